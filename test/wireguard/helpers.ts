import { MemoryBind } from '../../src/wireguard/bind.js';
import { FakeClock } from '../../src/wireguard/clock.js';
import { Device, type DeviceOptions } from '../../src/wireguard/device.js';
import { generatePrivateKey, publicKeyFromPrivate } from '../../src/wireguard/keys.js';

/** A minimal IPv4 packet (no checksum needed: the device does not check it) with `payload`. */
export function ipv4(src: string, dst: string, payload: Uint8Array = new Uint8Array(8)): Uint8Array {
  const p = new Uint8Array(20 + payload.length);
  p[0] = 0x45;
  p[2] = p.length >> 8;
  p[3] = p.length & 0xff;
  p[8] = 64;
  p[9] = 17;
  p.set(src.split('.').map(Number), 12);
  p.set(dst.split('.').map(Number), 16);
  p.set(payload, 20);
  return p;
}

/** A minimal IPv6 packet from `src` to `dst` (full 16-byte addresses as hex groups). */
export function ipv6(src: Uint8Array, dst: Uint8Array, payload: Uint8Array = new Uint8Array(8)): Uint8Array {
  const p = new Uint8Array(40 + payload.length);
  p[0] = 0x60;
  p[4] = payload.length >> 8;
  p[5] = payload.length & 0xff;
  p[6] = 17;
  p[7] = 64;
  p.set(src, 8);
  p.set(dst, 24);
  p.set(payload, 40);
  return p;
}

/** Lets queued microtasks and setImmediate callbacks (the handshake queue) run. */
export async function settle(turns = 5): Promise<void> {
  for (let i = 0; i < turns; i++) await new Promise((r) => setImmediate(r));
}

export interface Pair {
  a: Device;
  b: Device;
  bindA: MemoryBind;
  bindB: MemoryBind;
  clock: FakeClock;
  keyA: Uint8Array;
  keyB: Uint8Array;
  received: { a: Uint8Array[]; b: Uint8Array[] };
  close(): Promise<void>;
}

/**
 * Two devices A (10.0.0.1) and B (10.0.0.2) over an in-memory bind, sharing a fake clock.
 * Only A knows B's endpoint at first, as with a client and a server.
 */
export function devicePair(
  opts: { psk?: Uint8Array; bothEndpoints?: boolean; device?: Partial<DeviceOptions> } = {},
): Pair {
  const net = new Map<string, MemoryBind>();
  const bindA = new MemoryBind('a', net);
  const bindB = new MemoryBind('b', net);
  const clock = new FakeClock();
  const keyA = generatePrivateKey();
  const keyB = generatePrivateKey();
  const a = new Device({ privateKey: keyA, bind: bindA, clock, ...opts.device });
  const b = new Device({ privateKey: keyB, bind: bindB, clock, ...opts.device });
  a.addPeer({
    publicKey: publicKeyFromPrivate(keyB),
    presharedKey: opts.psk,
    endpoint: bindB.endpoint,
    allowedIPs: ['10.0.0.2/32', 'fd00::2/128'],
  });
  b.addPeer({
    publicKey: publicKeyFromPrivate(keyA),
    presharedKey: opts.psk,
    endpoint: opts.bothEndpoints ? bindA.endpoint : undefined,
    allowedIPs: ['10.0.0.1/32', 'fd00::1/128'],
  });
  const received = { a: [] as Uint8Array[], b: [] as Uint8Array[] };
  a.onPacket((p) => received.a.push(new Uint8Array(p)));
  b.onPacket((p) => received.b.push(new Uint8Array(p)));
  return {
    a,
    b,
    bindA,
    bindB,
    clock,
    keyA,
    keyB,
    received,
    close: async () => {
      await a.close();
      await b.close();
    },
  };
}
