// Two of our WireGuard devices, each with a DERP Bind, ping each other through a real derper: the handshake
// and every ICMP echo (payload checked by the pinger) travel as DERP packets addressed by node key.
import { afterEach, expect, it } from 'vitest';
import { DerpBind } from '../../src/derp/bind.js';
import type { DerpMap } from '../../src/derp/derpmap.js';
import { Stack } from '../../src/netstack/stack.js';
import { Device } from '../../src/wireguard/device.js';
import { generatePrivateKey, publicKeyFromPrivate } from '../../src/wireguard/keys.js';
import { DERPER, missingBinaries, startDerper } from './derp-rig.js';
import { Cleanup } from './rig/exec.js';
import { skipUnless } from './rig/requirements.js';

const missing = missingBinaries([DERPER]);
let cleanup = new Cleanup();
afterEach(async () => {
  const errors = await cleanup.run();
  cleanup = new Cleanup();
  expect(errors.map((e) => e.message)).toEqual([]);
});

function mapFor(port: number, tls: { CertName?: string } = {}): DerpMap {
  return {
    Regions: {
      '900': {
        RegionID: 900,
        RegionCode: 'test',
        RegionName: 'loopback derper',
        Nodes: [
          { Name: '900a', RegionID: 900, HostName: '127.0.0.1', IPv4: '127.0.0.1', DERPPort: port, ...tls },
        ],
      },
    },
  };
}

async function node(derpMap: DerpMap, useHttp: boolean, address: string) {
  const privateKey = generatePrivateKey();
  const bind = await DerpBind.open({ privateKey, derpMap, homeRegion: 900, useHttp });
  const device = new Device({ privateKey, bind });
  const stack = new Stack(device, { addresses: [address] });
  cleanup.add(`close ${address}`, async () => {
    stack.close();
    await device.close();
    bind.close();
  });
  return { privateKey, publicKey: publicKeyFromPrivate(privateKey), bind, device, stack };
}

skipUnless(missing)('WireGuard over DERP through real derper', () => {
  for (const tls of [false, true]) {
    it(`two devices ping each other both ways (${tls ? 'TLS' : 'plain HTTP'})`, async () => {
      const d = await startDerper(cleanup, { tls });
      const map = mapFor(d.port, tls ? { CertName: d.certName } : {});
      const a = await node(map, !tls, '10.77.0.1/24');
      const b = await node(map, !tls, '10.77.0.2/24');
      a.device.addPeer({
        publicKey: b.publicKey,
        endpoint: a.bind.endpointFor(b.publicKey),
        allowedIPs: ['10.77.0.2/32'],
      });
      b.device.addPeer({
        publicKey: a.publicKey,
        endpoint: b.bind.endpointFor(a.publicKey),
        allowedIPs: ['10.77.0.1/32'],
      });
      for (let seq = 1; seq <= 5; seq++) {
        const r = await a.stack.ping('10.77.0.2', { seq, size: 1200, timeoutMs: 5000 });
        expect(r.from).toBe('10.77.0.2');
        expect(r.bytes).toBe(1208);
      }
      const back = await b.stack.ping('10.77.0.1', { size: 1000, timeoutMs: 5000 });
      expect(back.from).toBe('10.77.0.1');
      expect(a.device.status().peers[0]!.latestHandshake).toBeDefined();
      expect(a.device.status().peers[0]!.rxBytes).toBeGreaterThan(5 * 1200);
      expect(b.stack.stats.echoRequestsAnswered).toBe(5);
    });
  }
});
