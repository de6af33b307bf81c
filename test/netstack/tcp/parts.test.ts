// The pieces of TCP on their own: the segment codec, sequence arithmetic, the SACK scoreboard,
// reassembly, the send buffer, the RTO estimator, the congestion controllers and the timer wheel.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Cubic } from '../../../src/netstack/tcp/cubic.js';
import { NewReno } from '../../../src/netstack/tcp/newreno.js';
import { Reassembly } from '../../../src/netstack/tcp/reassembly.js';
import { RtoEstimator } from '../../../src/netstack/tcp/rto.js';
import { SackScoreboard } from '../../../src/netstack/tcp/sack.js';
import { parseTcpSegment, TcpFlag, TcpSegment, writeTcpHeader } from '../../../src/netstack/tcp/segment.js';
import { SendBuffer } from '../../../src/netstack/tcp/send-buffer.js';
import { seqAdd, seqGt, seqLt } from '../../../src/netstack/tcp/seq.js';
import { TimerWheel, type WheelEntry } from '../../../src/netstack/tcp/timer-wheel.js';

describe('segment codec', () => {
  it('round-trips SYN options (MSS, SACK-permitted, timestamps, window scale) in Linux layout', () => {
    const buf = new Uint8Array(60);
    const hl = writeTcpHeader(buf, 0, {
      srcPort: 1234,
      dstPort: 80,
      seq: 0xfffffff0,
      ack: 0,
      flags: TcpFlag.SYN,
      window: 65535,
      synMss: 1380,
      synWscale: 7,
      synSack: true,
      tsVal: 0xdeadbeef,
      tsEcr: 0,
    });
    expect(hl).toBe(40);
    // MSS, SACK-permitted, TS, NOP, WS: exactly what Linux sends.
    expect([...buf.subarray(20, 24)]).toEqual([2, 4, 0x05, 0x64]);
    expect([...buf.subarray(24, 28)]).toEqual([4, 2, 8, 10]);
    expect([...buf.subarray(36, 40)]).toEqual([1, 3, 3, 7]);
    const seg = new TcpSegment();
    parseTcpSegment(seg, buf, 0, hl);
    expect(seg).toMatchObject({
      srcPort: 1234,
      dstPort: 80,
      seq: 0xfffffff0,
      flags: TcpFlag.SYN,
      mss: 1380,
      wscale: 7,
    });
    expect(seg.sackPermitted).toBe(true);
    expect(seg.tsVal).toBe(0xdeadbeef);
    expect(seg.seqLength).toBe(1);
  });

  it('round-trips SACK blocks with timestamps', () => {
    const buf = new Uint8Array(60);
    const sack = [100, 200, 300, 400, 0xfffffff0, 5];
    const hl = writeTcpHeader(buf, 0, {
      srcPort: 1,
      dstPort: 2,
      seq: 1,
      ack: 2,
      flags: TcpFlag.ACK,
      window: 10,
      tsVal: 1,
      tsEcr: 2,
      sack,
      sackCount: 3,
    });
    expect(hl).toBe(60);
    const seg = new TcpSegment();
    parseTcpSegment(seg, buf, 0, hl);
    expect(seg.sack).toEqual(sack);
    expect(seg.tsEcr).toBe(2);
  });

  it('caps a window scale above 14 (RFC 7323 §2.3) and rejects a bad data offset', () => {
    const buf = new Uint8Array(24);
    buf[12] = 6 << 4;
    buf.set([1, 3, 3, 20], 20);
    const seg = new TcpSegment();
    parseTcpSegment(seg, buf, 0, 24);
    expect(seg.wscale).toBe(14);
    buf[12] = 7 << 4;
    expect(() => parseTcpSegment(seg, buf, 0, 24)).toThrow(/data offset/);
  });
});

describe('sequence arithmetic', () => {
  it('orders numbers across the 2^32 wrap', () => {
    expect(seqLt(0xfffffff0, 5)).toBe(true);
    expect(seqGt(5, 0xfffffff0)).toBe(true);
    expect(seqAdd(0xffffffff, 2)).toBe(1);
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 2 ** 32 - 1 }),
        fc.integer({ min: 1, max: 2 ** 31 - 1 }),
        (a, n) => {
          expect(seqLt(a, seqAdd(a, n))).toBe(true);
          expect(seqGt(seqAdd(a, n), a)).toBe(true);
        },
      ),
    );
  });
});

describe('SACK scoreboard', () => {
  it('merges blocks, ignores stale ones, finds holes and counts bytes', () => {
    const sb = new SackScoreboard();
    expect(sb.update([2000, 3000, 5000, 6000], 1000, 10000)).toBe(true);
    expect(sb.update([2500, 3000], 1000, 10000)).toBe(false);
    expect(sb.update([500, 900, 20000, 21000], 1000, 10000)).toBe(false); // below SND.UNA, above SND.MAX
    sb.update([3000, 5000], 1000, 10000);
    expect(sb.blocks).toEqual([2000, 6000]);
    expect(sb.sacked).toBe(4000);
    expect(sb.nextHole(1000, 6000)).toEqual({ seq: 1000, len: 1000 });
    expect(sb.nextHole(2000, 6000)).toBeUndefined();
    expect(sb.holeBytes(1000, 8000)).toBe(3000);
    sb.advance(2500);
    expect(sb.blocks).toEqual([2500, 6000]);
    expect(sb.sacked).toBe(3500);
  });

  it('keeps blocks sorted and disjoint for any input', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.nat(5000), fc.nat(500)), { maxLength: 30 }), (pairs) => {
        const sb = new SackScoreboard();
        for (const [l, n] of pairs) sb.update([l, l + n], 0, 6000);
        const b = sb.blocks;
        let total = 0;
        for (let i = 0; i < b.length; i += 2) {
          expect(b[i]!).toBeLessThan(b[i + 1]!);
          if (i > 0) expect(b[i]!).toBeGreaterThan(b[i - 1]!);
          total += b[i + 1]! - b[i]!;
        }
        expect(sb.sacked).toBe(total);
      }),
    );
  });
});

describe('reassembly', () => {
  it('reorders overlapping pieces into the original bytes and reports SACK blocks', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 1, maxLength: 3000 }),
        fc.array(fc.tuple(fc.nat(3000), fc.nat(400))),
        (data, cuts) => {
          const r = new Reassembly();
          const base = 0xfffff000; // across the wrap
          for (const [at, n] of cuts) {
            const s = Math.min(at, data.length - 1) + 1;
            const len = Math.min(n, data.length - s);
            if (len > 0) r.insert(seqAdd(base, s), data, s, len);
          }
          const blocks: number[] = [];
          r.sackBlocks(blocks, 4);
          expect(blocks.length % 2).toBe(0);
          r.insert(base, data, 0, data.length);
          const out: Uint8Array[] = [];
          const next = r.drain(base, (d) => out.push(d.slice()));
          expect(next).toBe(seqAdd(base, data.length));
          expect(Buffer.concat(out)).toEqual(Buffer.from(data));
          expect(r.bytes).toBe(0);
        },
      ),
    );
  });
});

describe('send buffer', () => {
  it('copies any range across chunk boundaries and consumes from the front', () => {
    fc.assert(
      fc.property(
        fc.array(fc.uint8Array({ minLength: 1, maxLength: 300 }), { minLength: 1, maxLength: 20 }),
        fc.nat(),
        fc.nat(),
        (chunks, a, b) => {
          const sb = new SendBuffer();
          for (const c of chunks) sb.push(c);
          const all = Buffer.concat(chunks);
          const drop = a % all.length;
          sb.consume(drop);
          const rest = all.subarray(drop);
          const off = rest.length === 0 ? 0 : b % rest.length;
          const len = rest.length - off;
          const dst = new Uint8Array(len);
          sb.copyOut(off, len, dst, 0);
          expect(Buffer.from(dst)).toEqual(rest.subarray(off));
          expect(sb.length).toBe(rest.length);
        },
      ),
    );
  });
});

describe('RTO and congestion control', () => {
  it('RFC 6298: first sample sets SRTT and RTTVAR; the floor and backoff apply', () => {
    const r = new RtoEstimator(200, 60_000, 1000);
    expect(r.current()).toBe(1000);
    r.sample(100);
    expect(r.srtt).toBe(100);
    expect(r.rttvar).toBe(50);
    expect(r.rto).toBe(300);
    r.backoff = 3;
    expect(r.current()).toBe(2400);
    r.sample(10);
    expect(r.backoff).toBe(0);
    expect(r.current()).toBeGreaterThanOrEqual(200);
  });

  it('NewReno halves on loss and grows one MSS per window in congestion avoidance', () => {
    const cc = new NewReno(1000);
    expect(cc.cwnd).toBe(10_000);
    cc.onCongestion(0, 10_000);
    expect(cc.ssthresh).toBe(5000);
    expect(cc.cwnd).toBe(5000);
    for (let i = 0; i < 5; i++) cc.onAck(1000);
    expect(cc.cwnd).toBe(6000);
    cc.onTimeout(0, 6000);
    expect(cc.cwnd).toBe(1000);
  });

  it('CUBIC reduces by β = 0.7 and regrows towards W_max along the cubic', () => {
    const cc = new Cubic(1000);
    for (let i = 0; i < 90; i++) cc.onAck(1000, i, 10); // slow start to 100 segments
    expect(cc.cwnd).toBe(100_000);
    cc.onCongestion(1000, 100_000);
    expect(cc.cwnd).toBe(70_000);
    let t = 1000;
    while (t < 6000) {
      cc.onAck(1000, t, 10);
      t += 1;
    }
    // K = cbrt(W_max·(1−β)/C) = cbrt(75) ≈ 4.2 s: after 5 s the window is back near W_max.
    expect(cc.cwnd).toBeGreaterThan(95_000);
    expect(cc.cwnd).toBeLessThan(130_000);
  });

  it('a congestion event never raises the window, however much is outstanding', () => {
    // After a relay dropped most of a burst, SND.MAX − SND.UNA spans holes and SACKed data far
    // beyond cwnd: the reduction must start from cwnd (it used to start from the larger flight).
    const cubic = new Cubic(1000);
    cubic.cwnd = 20_000;
    cubic.onCongestion(0, 400_000);
    expect(cubic.cwnd).toBe(14_000);
    expect(cubic.ssthresh).toBe(14_000);
    cubic.onTimeout(0, 400_000);
    expect(Math.round(cubic.ssthresh)).toBeCloseTo(9800, -1); // 0.7 of 14 segments, floored
    expect(cubic.cwnd).toBe(1000);
    const reno = new NewReno(1000);
    reno.cwnd = 20_000;
    reno.onCongestion(0, 400_000);
    expect(reno.cwnd).toBe(10_000);
    // An application-limited flow still reduces from what it had in flight.
    reno.onTimeout(0, 4000);
    expect(reno.ssthresh).toBe(2000);
  });
});

describe('timer wheel', () => {
  it('fires entries at their deadlines, moves them earlier, cancels them', async () => {
    const wheel = new TimerWheel();
    const fired: string[] = [];
    const entry = (name: string): WheelEntry => ({
      wheelAt: 0,
      wheelSlot: -1,
      onWheel: () => fired.push(name),
    });
    const now = performance.now();
    const a = entry('a');
    const b = entry('b');
    const c = entry('c');
    wheel.schedule(a, now + 40);
    wheel.schedule(b, now + 200);
    wheel.schedule(b, now + 10); // earlier: moves
    wheel.schedule(c, now + 20);
    wheel.cancel(c);
    await new Promise((r) => setTimeout(r, 80));
    expect(fired).toEqual(['b', 'a']);
    wheel.stop();
  });
});

describe('fast checksum', () => {
  it('equals sumBytes at every alignment and length', async () => {
    const { fastSum } = await import('../../../src/netstack/tcp/segment.js');
    const { sumBytes } = await import('../../../src/netstack/checksum.js');
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 0, maxLength: 2000 }),
        fc.nat(7),
        fc.nat(0xffff),
        (data, shift, init) => {
          const buf = new Uint8Array(data.length + 8);
          buf.set(data, shift);
          expect(fastSum(buf, shift, data.length, init)).toBe(sumBytes(buf, shift, data.length, init));
        },
      ),
      { numRuns: 2000 },
    );
  });
});

describe('reassembly bounds', () => {
  it('holds at most MAX_PIECES pieces however the peer fragments the window', () => {
    const r = new Reassembly();
    const byte = new Uint8Array([7]);
    let accepted = 0;
    for (let i = 0; i < 20_000; i++) if (r.insert(1000 + 2 * i, byte, 0, 1)) accepted++;
    expect(accepted).toBe(Reassembly.MAX_PIECES);
    expect(r.bytes).toBe(Reassembly.MAX_PIECES);
  });
});
