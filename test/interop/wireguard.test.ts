// Our WireGuard device against a real one: wireguard-go with a TUN device in a namespace, and the Linux
// kernel's ICMP behind it. Every scenario of the issue: both directions of ping, both initiators, PSK,
// IPv6 inner addresses, our UDP port changing mid-flow, and a wrong key.
import { afterEach, beforeAll, expect, it } from 'vitest';
import { Stack } from '../../src/netstack/stack.js';
import { randomBytes } from '../../src/wireguard/crypto.js';
import { Device } from '../../src/wireguard/device.js';
import {
  generatePrivateKey,
  keyFromBase64,
  keyToBase64,
  publicKeyFromPrivate,
} from '../../src/wireguard/keys.js';
import { UdpBind } from '../../src/wireguard/udp-bind.js';
import { execIn } from './rig/exec.js';
import { sweepLeftovers } from './rig/netns.js';
import { startWireguardGoPeer, type WireguardGoPeer } from './rig/pair.js';
import { checkRequirements, skipUnless } from './rig/requirements.js';

const missing = checkRequirements(['root', 'netns', 'tun', 'wireguard-go', 'wg', 'ip', 'ping']);

interface Node {
  device: Device;
  bind: UdpBind;
  stack: Stack;
  peer: WireguardGoPeer;
  privateKey: Uint8Array;
}

const open: Node[] = [];

/** wireguard-go in a namespace, and our device + stack in this process on the root side of the veth. */
async function startNode(
  opts: { psk?: Uint8Array; weInitiate?: boolean; wrongKeyAtPeer?: boolean } = {},
): Promise<Node> {
  const privateKey = generatePrivateKey();
  const ourPublic = keyToBase64(
    publicKeyFromPrivate(opts.wrongKeyAtPeer ? generatePrivateKey() : privateKey),
  );
  // Bind before wireguard-go starts so that its first initiation (when it knows our port) is not lost.
  const bind = await UdpBind.open({ host: '0.0.0.0' });
  const peer = await startWireguardGoPeer({
    peer: { publicKey: ourPublic, ...(opts.weInitiate ? {} : { port: bind.port }) },
  });
  if (opts.psk) {
    await peer.wg.setPeer({
      publicKey: ourPublic,
      allowedIps: [`${peer.hostInner4}/32`, `${peer.hostInner6}/128`],
      presharedKey: keyToBase64(opts.psk),
      ...(opts.weInitiate ? {} : { endpoint: `${peer.hostAddress}:${bind.port}` }),
    });
  }
  const device = new Device({ privateKey, bind });
  device.addPeer({
    publicKey: keyFromBase64(peer.keys.publicKey),
    presharedKey: opts.psk,
    endpoint: bind.parseEndpoint(`${peer.underlay}:${peer.listenPort}`),
    allowedIPs: ['10.200.1.0/24', 'fd00:200::/64'],
  });
  const stack = new Stack(device, { addresses: [`${peer.hostInner4}/24`, `${peer.hostInner6}/64`] });
  const node = { device, bind, stack, peer, privateKey };
  open.push(node);
  return node;
}

async function stopAll(): Promise<void> {
  for (const n of open.splice(0)) {
    n.stack.close();
    await n.device.close();
    const errors = await n.peer.close();
    expect(errors.map((e) => e.message)).toEqual([]);
  }
}

/** Linux's ping(8) inside the namespace, towards our node. */
async function linuxPing(n: Node, target: string, count = 3): Promise<string> {
  const r = await execIn(
    n.peer.ns,
    'ping',
    ['-c', String(count), '-i', '0.2', '-W', '3', '-s', '1200', target],
    {
      timeoutMs: 20_000,
    },
  );
  return r.stdout;
}

skipUnless(missing)('WireGuard interop with wireguard-go', () => {
  beforeAll(async () => {
    await sweepLeftovers();
  });
  afterEach(stopAll);

  it('we initiate and ping Linux (IPv4), with a large payload intact', async () => {
    const n = await startNode({ weInitiate: true });
    const handshakes: boolean[] = [];
    n.device.on('handshake', (e: { initiator: boolean }) => handshakes.push(e.initiator));
    for (let seq = 1; seq <= 3; seq++) {
      // The reply must carry our 1200 random bytes back: the pinger checks the data.
      const r = await n.stack.ping(n.peer.inner4, { seq, size: 1200, timeoutMs: 5000 });
      expect(r.from).toBe(n.peer.inner4);
      expect(r.bytes).toBe(1208);
    }
    expect(handshakes).toEqual([true]);
    const st = await n.peer.wg.waitForHandshake(keyToBase64(n.device.publicKey));
    expect(st.rx).toBeGreaterThan(3 * 1200);
    expect(st.endpoint).toBe(`${n.peer.hostAddress}:${n.bind.port}`);
    const ours = n.device.status().peers[0]!;
    expect(ours.latestHandshake).toBeDefined();
    expect(ours.rxBytes).toBeGreaterThan(3 * 1200);
  });

  it('Linux initiates and pings us (IPv4); we answer', async () => {
    const n = await startNode();
    const handshakes: boolean[] = [];
    n.device.on('handshake', (e: { initiator: boolean }) => handshakes.push(e.initiator));
    const out = await linuxPing(n, n.peer.hostInner4);
    expect(out).toMatch(/3 packets transmitted, 3 received/);
    expect(handshakes).toEqual([false]);
    expect(n.stack.stats.echoRequestsAnswered).toBe(3);
  });

  it('IPv6 inner addresses, both directions', async () => {
    const n = await startNode({ weInitiate: true });
    const r = await n.stack.ping(n.peer.inner6, { size: 1000, timeoutMs: 5000 });
    expect(r.from).toBe(n.peer.inner6);
    const out = await linuxPing(n, n.peer.hostInner6);
    expect(out).toMatch(/3 packets transmitted, 3 received/);
  });

  it('with a preshared key, both initiators', async () => {
    const psk = randomBytes(32);
    const n = await startNode({ psk, weInitiate: true });
    await n.stack.ping(n.peer.inner4, { timeoutMs: 5000 });
    await stopAll();
    const m = await startNode({ psk });
    expect(await linuxPing(m, m.peer.hostInner4)).toMatch(/3 received/);
  });

  it('a wrong PSK gets no session', async () => {
    const n = await startNode({ weInitiate: true });
    await n.peer.wg.setPeer({
      publicKey: keyToBase64(n.device.publicKey),
      allowedIps: [`${n.peer.hostInner4}/32`],
      presharedKey: keyToBase64(randomBytes(32)),
    });
    await expect(n.stack.ping(n.peer.inner4, { timeoutMs: 2500 })).rejects.toMatchObject({ code: 'TIMEOUT' });
    expect(n.device.status().peers[0]!.latestHandshake).toBeUndefined();
  });

  it('our UDP port changes mid-flow and wireguard-go follows us', async () => {
    const n = await startNode({ weInitiate: true });
    await n.stack.ping(n.peer.inner4, { seq: 1, timeoutMs: 5000 });
    const before = n.bind.port;
    await n.bind.rebind(0);
    expect(n.bind.port).not.toBe(before);
    // The session is unchanged; the next authenticated packet from the new port moves wireguard-go's endpoint.
    await n.stack.ping(n.peer.inner4, { seq: 2, timeoutMs: 5000 });
    const st = await n.peer.wg.peer(keyToBase64(n.device.publicKey));
    expect(st?.endpoint).toBe(`${n.peer.hostAddress}:${n.bind.port}`);
    expect(await linuxPing(n, n.peer.hostInner4, 2)).toMatch(/2 received/);
  });

  it('a key wireguard-go does not know gets no answer and breaks nothing', async () => {
    const n = await startNode({ weInitiate: true, wrongKeyAtPeer: true });
    await expect(n.stack.ping(n.peer.inner4, { timeoutMs: 2500 })).rejects.toMatchObject({ code: 'TIMEOUT' });
    expect(n.device.status().peers[0]!.latestHandshake).toBeUndefined();
    expect(n.device.status().peers[0]!.rxBytes).toBe(0);
    // wireguard-go is still alive and well.
    const st = await n.peer.wg.show();
    expect(st.peers[0]!.latestHandshake).toBe(0);
  });
});
