// Random and mutated segments, checksummed so that they reach TCP, fired into a live
// connection: nothing throws, the control block's invariants hold after every segment, and
// a connection that was not reset still carries data.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parseIp } from '../../../src/netstack/address.js';
import { IpProtocol } from '../../../src/netstack/packet.js';
import type { TcpConnection } from '../../../src/netstack/tcp/connection.js';
import { parseTcpSegment, setTcpChecksum, TcpSegment } from '../../../src/netstack/tcp/segment.js';
import { seqLe } from '../../../src/netstack/tcp/seq.js';
import { TcpServer } from '../../../src/netstack/tcp/server.js';
import { type TcpSocket, tcpConnect } from '../../../src/netstack/tcp/socket.js';
import { assertFuzz, fuzzRuns } from '../../fuzz.js';
import { A, B, settle, sha256, tcpPair } from './helpers.js';

const VALID = new Set([
  'SYN_SENT',
  'SYN_RECEIVED',
  'ESTABLISHED',
  'FIN_WAIT_1',
  'FIN_WAIT_2',
  'CLOSE_WAIT',
  'CLOSING',
  'LAST_ACK',
  'TIME_WAIT',
  'CLOSED',
]);

/** One fuzzed segment: header fields relative to the live connection, raw options, payload. */
const segmentArb = fc.record({
  seqDelta: fc.oneof(
    fc.integer({ min: -70000, max: 70000 }),
    fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }),
  ),
  ackDelta: fc.oneof(
    fc.integer({ min: -70000, max: 70000 }),
    fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }),
  ),
  flags: fc.integer({ min: 0, max: 255 }),
  window: fc.integer({ min: 0, max: 0xffff }),
  options: fc.uint8Array({ maxLength: 40 }),
  dataOffsetWords: fc.option(fc.integer({ min: 0, max: 15 })),
  payload: fc.uint8Array({ maxLength: 1300 }),
});

type Fuzzed = typeof segmentArb extends fc.Arbitrary<infer T> ? T : never;

function build(f: Fuzzed, conn: TcpConnection, srcPort: number, dstPort: number): Uint8Array {
  const optLen = f.options.length & ~3;
  const tcpLen = 20 + optLen + f.payload.length;
  const packet = new Uint8Array(20 + tcpLen);
  const o = 20;
  const dv = new DataView(packet.buffer);
  dv.setUint16(o, srcPort);
  dv.setUint16(o + 2, dstPort);
  dv.setUint32(o + 4, (conn.rcvNxt + f.seqDelta) >>> 0);
  dv.setUint32(o + 8, (conn.sndUna + f.ackDelta) >>> 0);
  // Mostly a truthful data offset; sometimes any value at all (a mutation the parser must survive).
  packet[o + 12] = (f.dataOffsetWords ?? (20 + optLen) / 4) << 4;
  packet[o + 13] = f.flags;
  dv.setUint16(o + 14, f.window);
  packet.set(f.options.subarray(0, optLen), o + 20);
  packet.set(f.payload, o + 20 + optLen);
  const s = parseIp(B);
  const d = parseIp(A);
  let sum = 0;
  for (let i = 0; i < 4; i += 2) sum += ((s[i]! << 8) | s[i + 1]!) + ((d[i]! << 8) | d[i + 1]!);
  setTcpChecksum(packet, o, tcpLen, sum);
  return packet;
}

function checkInvariants(c: TcpConnection, receiveBuffer: number): void {
  expect(VALID.has(c.state)).toBe(true);
  if (c.state === 'CLOSED') return;
  expect(seqLe(c.sndUna, c.sndNxt)).toBe(true);
  expect(seqLe(c.sndNxt, c.sndMax)).toBe(true);
  expect(c.rx.bytes).toBeLessThanOrEqual(receiveBuffer);
  expect(c.sendBuf.length).toBeGreaterThanOrEqual(0);
  expect(c.cc.cwnd).toBeGreaterThan(0);
  expect(Number.isFinite(c.rto.current())).toBe(true);
}

describe('TCP fuzz', () => {
  it('the segment parser accepts or rejects any bytes with a NetstackError, nothing else', () => {
    const seg = new TcpSegment();
    assertFuzz(
      fc.property(fc.uint8Array({ maxLength: 120 }), (bytes) => {
        try {
          parseTcpSegment(seg, bytes, 0, bytes.length);
          expect(seg.dataOffset + seg.dataLength).toBe(bytes.length);
        } catch (err) {
          expect((err as Error).name).toBe('NetstackError');
        }
      }),
      { numRuns: fuzzRuns(3000) },
    );
  });

  it('a byte injected into a live connection puts the ends out of step without an ACK storm', async () => {
    // a accepts the byte, so it ACKs data b never sent; b's answer lies below a's RCV.NXT. Each
    // end answering the other's segment at once would loop forever (fast-check found it: the
    // loop ran in microtasks, starved every timer and filled the test's wire log until the heap
    // gave out). Linux rate-limits both answers (tcp_oow_rate_limited, challenge ACKs); so do we.
    const pair = tcpPair();
    try {
      new TcpServer(pair.b, {}, (s) => s.on('error', () => {})).listen(80);
      const client = tcpConnect(pair.a, { host: B, port: 80 });
      client.on('error', () => {});
      await new Promise((r) => client.once('connect', r));
      const conn = (client as unknown as { conn: TcpConnection }).conn;
      const f: Fuzzed = {
        seqDelta: 0,
        ackDelta: 0,
        flags: 0x18, // ACK | PSH
        window: 0xffff,
        options: new Uint8Array(0),
        dataOffsetWords: null,
        payload: new Uint8Array([0x42]),
      };
      const before = pair.wire.length;
      pair.sb.sendPrepared(build(f, conn, 80, client.localPort), parseIp(A), IpProtocol.TCP, {
        src: parseIp(B),
      });
      await settle(300);
      expect(pair.wire.length - before).toBeLessThan(20);
    } finally {
      pair.close();
    }
  });

  it('random and mutated segments into a live connection never crash it or break its invariants', async () => {
    const receiveBuffer = 256 * 1024;
    await assertFuzz(
      fc.asyncProperty(fc.array(segmentArb, { minLength: 1, maxLength: 25 }), async (segments) => {
        const pair = tcpPair({ a: { receiveBuffer, minRtoMs: 20 }, b: { minRtoMs: 20 } });
        try {
          let peer: TcpSocket | undefined;
          new TcpServer(pair.b, { allowHalfOpen: true }, (s) => {
            peer = s;
            s.on('error', () => {});
          }).listen(80);
          const client = tcpConnect(pair.a, { host: B, port: 80, allowHalfOpen: true });
          const errors: string[] = [];
          client.on('error', (e: NodeJS.ErrnoException) => errors.push(e.code ?? e.message));
          await new Promise((r) => client.once('connect', r));
          const conn = (client as unknown as { conn: TcpConnection }).conn;
          for (const f of segments) {
            const packet = build(f, conn, 80, client.localPort);
            pair.sb.sendPrepared(packet, parseIp(A), IpProtocol.TCP, { src: parseIp(B) });
            await new Promise((r) => setImmediate(r));
            checkInvariants(conn, receiveBuffer);
          }
          await settle(2);
          // Only a reset or a timeout may end it: anything else is a bug.
          for (const e of errors) expect(['ECONNRESET', 'ETIMEDOUT', 'EPIPE']).toContain(e);
          const peerConn = peer && (peer as unknown as { conn: TcpConnection }).conn;
          // An injected segment that a accepted can put the two ends out of step for good, as in
          // any TCP: data moves a's RCV.NXT past b's SND.MAX (b's segments are then out of window),
          // and a sequence number ahead of b's moves SND.WL1 past it (b's window updates are then
          // ignored, RFC 9293 §3.10.7.4). Such a pair must only stay quiet (no ACK storm, see
          // input.ts outOfWindowAck) and keep its invariants.
          const inStep =
            peerConn !== undefined && peerConn.sndMax === conn.rcvNxt && seqLe(conn.sndWl1, peerConn.sndMax);
          if (conn.state === 'ESTABLISHED' && peer && errors.length === 0 && inStep) {
            // Still usable for new data from a to b.
            const msg = Buffer.from('after the storm');
            const got: Buffer[] = [];
            peer.on('data', (d: Buffer) => got.push(d));
            client.write(msg);
            const deadline = performance.now() + 2000;
            while (
              Buffer.concat(got).length < msg.length &&
              performance.now() < deadline &&
              conn.state === 'ESTABLISHED'
            ) {
              await settle(5);
            }
            if (conn.state === 'ESTABLISHED' && peer.tcpState !== 'CLOSED') {
              expect(sha256(Buffer.concat(got))).toBe(sha256(msg));
            }
          }
        } finally {
          pair.close();
        }
      }),
      { numRuns: fuzzRuns(60, 0.01) },
    );
  }, 60_000);
});
