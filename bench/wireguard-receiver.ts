/** Child process of the flood benchmark: a device that counts the packets it decrypts. */
import type { AeadEngineName } from '../src/wireguard/aead.js';
import { Device } from '../src/wireguard/device.js';
import { keyFromBase64 } from '../src/wireguard/keys.js';
import { UdpBind } from '../src/wireguard/udp-bind.js';

interface Setup {
  privateKey: string;
  peer: string;
  engine: AeadEngineName;
}

process.once('message', async (setup: Setup) => {
  const bind = await UdpBind.open({ host: '127.0.0.1' });
  const dev = new Device({ privateKey: keyFromBase64(setup.privateKey), bind, aead: setup.engine });
  dev.addPeer({ publicKey: keyFromBase64(setup.peer), allowedIPs: ['10.9.0.1/32'] });
  let packets = 0;
  let start = 0;
  dev.onPacket(() => {
    packets++;
  });
  process.on('message', async (m: { cmd: string }) => {
    if (m.cmd === 'start') {
      packets = 0;
      start = performance.now();
    } else if (m.cmd === 'stop') {
      process.send!({ packets, seconds: (performance.now() - start) / 1000 });
      await dev.close();
    }
  });
  process.send!({ port: bind.port });
});
