// Lazy peer configuration (Device.addLazyPeer): peers known by key and allowed IPs are configured
// only when a packet is routed to them or a handshake initiation carries their key.
import { describe, expect, it } from 'vitest';
import { MemoryBind } from '../../src/wireguard/bind.js';
import { FakeClock } from '../../src/wireguard/clock.js';
import { REJECT_AFTER_TIME } from '../../src/wireguard/constants.js';
import { Device, type PeerConfiguredEvent } from '../../src/wireguard/device.js';
import { generatePrivateKey, publicKeyFromPrivate } from '../../src/wireguard/keys.js';
import { ipv4, settle } from './helpers.js';

/** Devices on one in-memory network and clock; each records what it receives and configures. */
function net() {
  const wires = new Map<string, MemoryBind>();
  const clock = new FakeClock();
  const devices: Device[] = [];
  const make = (name: string) => {
    const bind = new MemoryBind(name, wires);
    const key = generatePrivateKey();
    const dev = new Device({ privateKey: key, bind, clock });
    const received: Uint8Array[] = [];
    const configured: PeerConfiguredEvent[] = [];
    dev.onPacket((p) => received.push(new Uint8Array(p)));
    dev.on('peerConfigured', (e: PeerConfiguredEvent) => configured.push(e));
    devices.push(dev);
    return { dev, bind, pub: publicKeyFromPrivate(key), received, configured };
  };
  /** Lets `ms` pass a second at a time, delivering what each second sends. */
  const pass = async (ms: number) => {
    for (let t = 0; t < ms; t += 1000) {
      clock.advance(1000);
      await settle();
    }
  };
  return { make, clock, pass, close: async () => Promise.all(devices.map((d) => d.close())) };
}

/** A with B lazy (endpoint known), B with A lazy (endpoint learned from the handshake). */
function lazyPair() {
  const n = net();
  const a = n.make('a');
  const b = n.make('b');
  a.dev.addLazyPeer({ publicKey: b.pub, endpoint: b.bind.endpoint, allowedIPs: ['10.0.0.2/32'] });
  b.dev.addLazyPeer({ publicKey: a.pub, allowedIPs: ['10.0.0.1/32'] });
  return { ...n, a, b };
}

describe('lazy WireGuard peers', () => {
  it('are not configured until needed, and cost no session state', async () => {
    const { a, b, close } = lazyPair();
    expect(a.dev.peerCounts).toEqual({ configured: 0, lazy: 1 });
    expect(a.dev.isConfigured(b.pub)).toBe(false);
    expect(a.dev.status().peers).toEqual([]);
    await close();
  });

  it('the first outbound packet configures the peer; the first inbound initiation configures ours', async () => {
    const { a, b, close } = lazyPair();
    const pkt = ipv4('10.0.0.1', '10.0.0.2', new Uint8Array([1, 2, 3]));
    a.dev.writePacket(pkt);
    expect(a.configured).toEqual([{ peer: Buffer.from(b.pub).toString('base64'), reason: 'outbound' }]);
    expect(a.dev.isConfigured(b.pub)).toBe(true);
    await settle();
    // B had A lazy: the initiation named A's key, so B configured it and answered.
    expect(b.configured).toEqual([{ peer: Buffer.from(a.pub).toString('base64'), reason: 'inbound' }]);
    expect(b.received).toEqual([pkt]);
    const back = ipv4('10.0.0.2', '10.0.0.1', new Uint8Array([9]));
    b.dev.writePacket(back);
    await settle();
    expect(a.received).toEqual([back]);
    expect(a.dev.peerCounts).toEqual({ configured: 1, lazy: 0 });
    expect(a.configured).toHaveLength(1);
    await close();
  });

  it('an initiation from a key that is neither configured nor lazy is refused', async () => {
    const n = net();
    const a = n.make('a');
    const stranger = n.make('s');
    stranger.dev.addPeer({ publicKey: a.pub, endpoint: a.bind.endpoint, allowedIPs: ['10.0.0.1/32'] });
    a.dev.addLazyPeer({ publicKey: publicKeyFromPrivate(generatePrivateKey()), allowedIPs: ['10.0.0.9/32'] });
    stranger.dev.writePacket(ipv4('10.0.0.3', '10.0.0.1'));
    await settle();
    expect(a.dev.stats.handshakeErrors).toBe(1);
    expect(a.dev.peerCounts).toEqual({ configured: 0, lazy: 1 });
    expect(a.received).toEqual([]);
    await n.close();
  });

  it('a removed peer is gone whether lazy or configured: no route, no handshake', async () => {
    const { a, b, close } = lazyPair();
    // Configured on A (outbound) and on B (inbound), then removed from both.
    a.dev.writePacket(ipv4('10.0.0.1', '10.0.0.2'));
    await settle();
    expect(b.received).toHaveLength(1);
    expect(a.dev.removePeer(b.pub)).toBe(true);
    expect(a.dev.peerCounts).toEqual({ configured: 0, lazy: 0 });
    a.dev.writePacket(ipv4('10.0.0.1', '10.0.0.2'));
    expect(a.dev.stats.noRoute).toBe(1);
    // A lazy peer removed before any traffic: its initiation is refused.
    const n = net();
    const c = n.make('c');
    const d = n.make('d');
    c.dev.addLazyPeer({ publicKey: d.pub, allowedIPs: ['10.0.0.4/32'] });
    d.dev.addPeer({ publicKey: c.pub, endpoint: c.bind.endpoint, allowedIPs: ['10.0.0.3/32'] });
    expect(c.dev.removePeer(d.pub)).toBe(true);
    d.dev.writePacket(ipv4('10.0.0.4', '10.0.0.3'));
    await settle();
    expect(c.dev.stats.handshakeErrors).toBe(1);
    expect(c.configured).toEqual([]);
    expect(c.received).toEqual([]);
    await close();
    await n.close();
  });

  it('a key change (remove + add lazy) reaches the peer under its new key only', async () => {
    const { a, b, make, close } = lazyPair();
    a.dev.writePacket(ipv4('10.0.0.1', '10.0.0.2'));
    await settle();
    expect(b.received).toHaveLength(1);
    // B's node re-keys: same addresses, new key, new device on a new endpoint.
    const b2 = make('b2');
    b2.dev.addLazyPeer({ publicKey: a.pub, allowedIPs: ['10.0.0.1/32'] });
    a.dev.removePeer(b.pub);
    a.dev.addLazyPeer({ publicKey: b2.pub, endpoint: b2.bind.endpoint, allowedIPs: ['10.0.0.2/32'] });
    expect(a.dev.isConfigured(b2.pub)).toBe(false);
    const pkt = ipv4('10.0.0.1', '10.0.0.2', new Uint8Array([42]));
    a.dev.writePacket(pkt);
    await settle();
    expect(b2.received).toEqual([pkt]);
    expect(b.received).toHaveLength(1);
    expect(a.dev.isConfigured(b.pub)).toBe(false);
    expect(a.dev.isConfigured(b2.pub)).toBe(true);
    await close();
  });

  it('routes by longest prefix across configured and lazy peers (a /32 inside a configured /24)', async () => {
    const n = net();
    const a = n.make('a');
    const router = n.make('r');
    const b = n.make('b');
    a.dev.addPeer({ publicKey: router.pub, endpoint: router.bind.endpoint, allowedIPs: ['10.0.0.0/24'] });
    a.dev.addLazyPeer({ publicKey: b.pub, endpoint: b.bind.endpoint, allowedIPs: ['10.0.0.2/32'] });
    b.dev.addLazyPeer({ publicKey: a.pub, allowedIPs: ['10.0.0.1/32'] });
    router.dev.addPeer({ publicKey: a.pub, allowedIPs: ['10.0.0.1/32'] });
    const toB = ipv4('10.0.0.1', '10.0.0.2');
    const toRouter = ipv4('10.0.0.1', '10.0.0.77');
    a.dev.writePacket(toB);
    a.dev.writePacket(toRouter);
    await settle();
    expect(b.received).toEqual([toB]);
    expect(router.received).toEqual([toRouter]);
    await n.close();
  });

  it('a configured peer is the only valid source of its addresses; a lazy one is never a valid source', async () => {
    const n = net();
    const a = n.make('a');
    const b = n.make('b');
    const c = n.make('c');
    a.dev.addPeer({ publicKey: b.pub, endpoint: b.bind.endpoint, allowedIPs: ['10.0.0.2/32'] });
    a.dev.addLazyPeer({ publicKey: c.pub, allowedIPs: ['10.0.0.3/32'] });
    b.dev.addPeer({ publicKey: a.pub, endpoint: a.bind.endpoint, allowedIPs: ['10.0.0.0/24'] });
    // B claims C's address as its source: A drops it and does not configure C.
    b.dev.writePacket(ipv4('10.0.0.3', '10.0.0.1'));
    await settle();
    expect(a.received).toEqual([]);
    expect(a.dev.stats.disallowedSource).toBe(1);
    expect(a.dev.isConfigured(c.pub)).toBe(false);
    await n.close();
  });

  it('trimIdle returns peers idle since the previous call to lazy; traffic configures them again', async () => {
    const { a, b, pass, close } = lazyPair();
    a.dev.writePacket(ipv4('10.0.0.1', '10.0.0.2'));
    await pass(30_000); // B's keepalive comes back
    expect(a.dev.trimIdle()).toBe(0); // first look: marks the counters
    await pass(REJECT_AFTER_TIME);
    expect(a.dev.trimIdle()).toBe(1);
    expect(a.dev.peerCounts).toEqual({ configured: 0, lazy: 1 });
    const again = ipv4('10.0.0.1', '10.0.0.2', new Uint8Array([7]));
    a.dev.writePacket(again);
    await settle();
    expect(b.received.at(-1)).toEqual(again);
    expect(a.configured.map((e) => e.reason)).toEqual(['outbound', 'outbound']);
    await close();
  });

  it('trimIdle leaves peers added eagerly (addPeer) alone', async () => {
    const n = net();
    const a = n.make('a');
    const b = n.make('b');
    a.dev.addPeer({ publicKey: b.pub, endpoint: b.bind.endpoint, allowedIPs: ['10.0.0.2/32'] });
    b.dev.addPeer({ publicKey: a.pub, allowedIPs: ['10.0.0.1/32'] });
    a.dev.writePacket(ipv4('10.0.0.1', '10.0.0.2'));
    await n.pass(30_000);
    expect(a.dev.trimIdle()).toBe(0);
    await n.pass(REJECT_AFTER_TIME);
    expect(a.dev.trimIdle()).toBe(0);
    expect(a.dev.isConfigured(b.pub)).toBe(true);
    await n.close();
  });

  it('a peer that moves traffic between two trims stays configured', async () => {
    const { a, b, pass, close } = lazyPair();
    a.dev.writePacket(ipv4('10.0.0.1', '10.0.0.2'));
    await pass(30_000);
    a.dev.trimIdle();
    await pass(REJECT_AFTER_TIME);
    a.dev.writePacket(ipv4('10.0.0.1', '10.0.0.2'));
    await pass(5_000);
    expect(b.received).toHaveLength(2);
    expect(a.dev.trimIdle()).toBe(0);
    expect(a.dev.isConfigured(b.pub)).toBe(true);
    await close();
  });

  it('a lazy peer with persistent keepalive is configured at once (it must send)', async () => {
    const n = net();
    const a = n.make('a');
    const b = n.make('b');
    a.dev.addLazyPeer({
      publicKey: b.pub,
      endpoint: b.bind.endpoint,
      allowedIPs: ['10.0.0.2/32'],
      persistentKeepalive: 25,
    });
    expect(a.dev.isConfigured(b.pub)).toBe(true);
    await n.close();
  });
  it('replaceAllowedIPs moves a prefix to a peer without a new handshake (lazy or configured)', async () => {
    const { a, b, close } = lazyPair();
    // While lazy: the new prefix routes to B and the old one no longer does.
    expect(a.dev.replaceAllowedIPs(b.pub, ['10.0.0.2/32', '192.168.5.0/24'])).toBe(true);
    expect(a.dev.hasRoute(new Uint8Array([192, 168, 5, 9]))).toBe(true);
    a.dev.writePacket(ipv4('10.0.0.1', '10.0.0.2', new Uint8Array([1])));
    await settle();
    const handshakes = a.dev.status().peers[0]!.latestHandshake;
    expect(handshakes).toBeDefined();
    // Configured: B may now answer from 192.168.5.9 (inbound source check) and the session is kept.
    b.dev.replaceAllowedIPs(a.pub, ['10.0.0.1/32', '0.0.0.0/0']);
    const reply = ipv4('192.168.5.9', '10.0.0.1', new Uint8Array([2]));
    b.dev.writePacket(reply);
    await settle();
    expect(a.received).toContainEqual(reply);
    expect(a.dev.replaceAllowedIPs(b.pub, ['10.0.0.2/32'])).toBe(true);
    expect(a.dev.hasRoute(new Uint8Array([192, 168, 5, 9]))).toBe(false);
    b.dev.writePacket(ipv4('192.168.5.9', '10.0.0.1', new Uint8Array([3])));
    await settle();
    expect(a.received.filter((p) => p[p.length - 1] === 3)).toEqual([]);
    expect(a.dev.status().peers[0]!.latestHandshake).toBe(handshakes);
    expect(a.dev.replaceAllowedIPs(new Uint8Array(32), [])).toBe(false);
    await close();
  });
});
