// The in-process rig for TCP: two stacks over an in-memory link with seeded faults, a tap that
// sees every segment on the wire, and a way to inject hand-made segments.
import { createHash } from 'node:crypto';
import { parseIp } from '../../../src/netstack/address.js';
import { type LinkFaults, type MemoryLink, memoryLinkPair } from '../../../src/netstack/link.js';
import { IpProtocol } from '../../../src/netstack/packet.js';
import { Stack } from '../../../src/netstack/stack.js';
import { TcpEndpoint } from '../../../src/netstack/tcp/endpoint.js';
import type { TcpOptions } from '../../../src/netstack/tcp/options.js';
import { setTcpChecksum, type TcpHeaderFields, writeTcpHeader } from '../../../src/netstack/tcp/segment.js';
import type { TcpSocket } from '../../../src/netstack/tcp/socket.js';

export const A = '10.0.0.1';
export const B = '10.0.0.2';

/** A segment as seen on the wire. */
export interface Seen {
  from: 'a' | 'b';
  srcPort: number;
  dstPort: number;
  seq: number;
  ack: number;
  flags: number;
  window: number;
  len: number;
}

export interface Pair {
  a: TcpEndpoint;
  b: TcpEndpoint;
  sa: Stack;
  sb: Stack;
  la: MemoryLink;
  lb: MemoryLink;
  /** Every segment written to the wire (before faults), in order. */
  wire: Seen[];
  /** When set, segments this returns true for are dropped before the link. */
  drop: ((s: Seen) => boolean) | undefined;
  close(): void;
}

/** Two TCP endpoints on 10.0.0.1 and 10.0.0.2 (and fd00::1/2) over a memory link. */
export function tcpPair(
  opts: { faults?: LinkFaults; a?: TcpOptions; b?: TcpOptions; mtu?: number } = {},
): Pair {
  const [la, lb] = memoryLinkPair(opts.mtu ?? 1420, opts.faults ?? {});
  const pair = { wire: [] as Seen[], drop: undefined } as unknown as Pair;
  for (const [from, link] of [
    ['a', la],
    ['b', lb],
  ] as const) {
    const write = link.writePacket.bind(link);
    link.writePacket = (ip: Uint8Array) => {
      const s = decode(from, ip);
      if (s) {
        pair.wire.push(s);
        if (pair.drop?.(s)) return;
      }
      write(ip);
    };
  }
  const sa = new Stack(la, { addresses: [A, 'fd00::1'] });
  const sb = new Stack(lb, { addresses: [B, 'fd00::2'] });
  Object.assign(pair, {
    la,
    lb,
    sa,
    sb,
    a: new TcpEndpoint(sa, opts.a),
    b: new TcpEndpoint(sb, opts.b),
    close() {
      pair.a.close();
      pair.b.close();
      sa.close();
      sb.close();
    },
  });
  return pair;
}

function decode(from: 'a' | 'b', ip: Uint8Array): Seen | undefined {
  const v4 = ip[0]! >>> 4 === 4;
  const proto = v4 ? ip[9] : ip[6];
  if (proto !== IpProtocol.TCP) return undefined;
  const o = v4 ? (ip[0]! & 15) * 4 : 40;
  const dv = new DataView(ip.buffer, ip.byteOffset);
  const hl = (ip[o + 12]! >>> 4) * 4;
  return {
    from,
    srcPort: dv.getUint16(o),
    dstPort: dv.getUint16(o + 2),
    seq: dv.getUint32(o + 4),
    ack: dv.getUint32(o + 8),
    flags: ip[o + 13]!,
    window: dv.getUint16(o + 14),
    len: ip.length - o - hl,
  };
}

/** Sends a hand-made segment from `stack` (source `src`) to `dst`. */
export function inject(
  stack: Stack,
  src: string,
  dst: string,
  f: TcpHeaderFields,
  payload = new Uint8Array(0),
): void {
  const s = parseIp(src);
  const d = parseIp(dst);
  const ipLen = s.length === 4 ? 20 : 40;
  const hdr = new Uint8Array(60);
  const hl = writeTcpHeader(hdr, 0, f);
  const packet = new Uint8Array(ipLen + hl + payload.length);
  packet.set(hdr.subarray(0, hl), ipLen);
  packet.set(payload, ipLen + hl);
  let sum = 0;
  for (let i = 0; i < s.length; i += 2) sum += ((s[i]! << 8) | s[i + 1]!) + ((d[i]! << 8) | d[i + 1]!);
  setTcpChecksum(packet, ipLen, hl + payload.length, sum);
  stack.sendPrepared(packet, d, IpProtocol.TCP, { src: s });
}

/** Resolves with everything `s` delivers until its end. */
export function collect(s: TcpSocket): Promise<Buffer> {
  const chunks: Buffer[] = [];
  s.on('data', (d: Buffer) => chunks.push(d));
  return new Promise((resolve, reject) => {
    s.once('end', () => resolve(Buffer.concat(chunks)));
    s.once('error', reject);
  });
}

export function sha256(b: Uint8Array): string {
  return createHash('sha256').update(b).digest('hex');
}

/** Resolves when `pred` holds, polling every few ms; rejects after `ms`. */
export async function until(pred: () => boolean, ms = 5000, what = 'condition'): Promise<void> {
  const end = performance.now() + ms;
  while (!pred()) {
    if (performance.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 2));
  }
}

/** Lets queued microtasks, immediates and 0-ms timers run. */
export function settle(ms = 5): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
