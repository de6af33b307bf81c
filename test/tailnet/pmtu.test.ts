import { describe, expect, it } from 'vitest';
import {
  discoShared,
  generateDiscoKey,
  mtuProbePadding,
  openDisco,
  sealDisco,
} from '../../src/tailnet/disco.js';
import {
  BASE_INNER_MTU,
  IDLE_AFTER,
  innerMtuForPayload,
  PeerMtu,
  type PmtuPath,
  PROBE_INTERVAL,
  PROBE_TIMEOUT,
  probeSizes,
  RETRY_FAILED_AFTER,
} from '../../src/tailnet/pmtu.js';
import { FakeClock } from '../../src/wireguard/clock.js';

/** A peer rig: `answer` decides whether the far end acknowledges a probe of a size. */
function rig(
  opts: { egress?: number; path?: PmtuPath | undefined; answer?: (size: number) => boolean } = {},
) {
  const clock = new FakeClock();
  const state = {
    path: 'path' in opts ? opts.path : { key: '192.0.2.1:41641', ip: '192.0.2.1', v6: false },
    egress: opts.egress ?? 9000,
    answer: opts.answer ?? (() => true),
    lastSend: 0,
    sent: [] as number[],
    changes: [] as number[],
  };
  const m: PeerMtu = new PeerMtu(clock, {
    directPath: () => state.path,
    egressMtu: () => state.egress,
    sendProbe: (txid, size) => {
      state.sent.push(size);
      // The far end answers after 1 ms, as a sealed ack would arrive.
      if (state.answer(size)) clock.setTimeout(() => m.handleAck(txid, size), 1);
    },
    lastSend: () => state.lastSend,
    changed: (mtu) => state.changes.push(mtu),
  });
  const active = (ms: number) => {
    // Data keeps flowing: each step is a send.
    for (let t = 0; t < ms; t += 50) {
      state.lastSend = clock.now();
      clock.advance(50);
    }
  };
  return { clock, m, state, active };
}

describe('path MTU probe sizes', () => {
  it('probes the wire MTUs up to the egress interface, as UDP payloads', () => {
    expect(probeSizes(1500, false)).toEqual([1472]);
    expect(probeSizes(1500, true)).toEqual([]); // 1,452 bytes give no inner byte over 1,420
    expect(probeSizes(9000, false)).toEqual([1472, 3972, 7972, 8972]);
    expect(probeSizes(9001, false)).toEqual([1472, 3972, 7972, 8972, 8973]);
    expect(probeSizes(65536, false).at(-1)).toBe(65507);
  });
  it('keeps the inner MTU a multiple of 16 within the probed datagram', () => {
    expect(innerMtuForPayload(8972)).toBe(8928);
    expect(innerMtuForPayload(8928 + 32)).toBe(8928);
    expect(innerMtuForPayload(65507)).toBe(65472);
    expect(innerMtuForPayload(1000)).toBe(BASE_INNER_MTU);
  });
});

describe('PeerMtu', () => {
  it('climbs the ladder one acknowledged size after another', () => {
    const { m, state, active } = rig();
    expect(m.innerMtu).toBe(BASE_INNER_MTU);
    m.wake();
    active(100);
    expect(state.sent.slice(0, 4)).toEqual([1472, 3972, 7972, 8972]);
    expect(m.confirmedPayload).toBe(8972);
    expect(m.innerMtu).toBe(8928);
    expect(state.changes).toEqual([1440, 3936, 7936, 8928]);
  });

  it('confirms the reached size while data flows, and stops probing when idle', () => {
    const { clock, m, state, active } = rig();
    m.wake();
    active(2000);
    const confirms = state.sent.slice(4);
    expect(confirms.length).toBeGreaterThanOrEqual(2000 / PROBE_INTERVAL - 2);
    expect(new Set(confirms)).toEqual(new Set([8972]));
    const n = state.sent.length;
    clock.advance(IDLE_AFTER + 1000);
    expect(m.innerMtu).toBe(BASE_INNER_MTU); // an idle path is not trusted at a raised size
    expect(m.running).toBe(false);
    expect(state.sent.length).toBeLessThan(n + IDLE_AFTER / PROBE_INTERVAL + 2);
    clock.advance(10_000);
    expect(m.running).toBe(false);
  });

  it('stops the search below a size whose probe is lost, and retries it later', () => {
    let limit = 8000;
    const { m, state, active } = rig({ answer: (s) => s <= limit });
    m.wake();
    active(PROBE_TIMEOUT + 500);
    expect(m.confirmedPayload).toBe(7972);
    expect(m.stats.lost).toBe(1);
    active(RETRY_FAILED_AFTER - 2000);
    expect(state.sent.filter((s) => s === 8972)).toHaveLength(1); // not retried before the timer
    limit = 9000;
    active(3000);
    expect(m.confirmedPayload).toBe(8972);
  });

  it('searches again at once when the egress interface MTU grows', () => {
    let limit = 1500;
    const { m, state, active } = rig({ egress: 9000, answer: (s) => s <= limit });
    m.wake();
    active(PROBE_TIMEOUT + 500);
    expect(m.confirmedPayload).toBe(1472); // 3,972 lost: the path carries 1,500
    limit = 65535;
    state.egress = 65536; // e.g. the route now leaves by another interface
    active(PROBE_INTERVAL * 2);
    expect(m.confirmedPayload).toBe(65507);
  });

  it('falls back to the base size at once when a confirmation is lost', () => {
    let limit = 9000;
    const { clock, m, state, active } = rig({ answer: (s) => s <= limit });
    m.wake();
    active(300);
    expect(m.innerMtu).toBe(8928);
    limit = 1500; // the path shrinks
    const shrunkAt = clock.now();
    let fellAt = -1;
    for (let t = 0; t < 2000 && fellAt < 0; t += 10) {
      state.lastSend = clock.now();
      clock.advance(10);
      if (state.changes.includes(BASE_INNER_MTU)) fellAt = clock.now();
    }
    expect(fellAt - shrunkAt).toBeGreaterThan(0);
    expect(fellAt - shrunkAt).toBeLessThanOrEqual(PROBE_INTERVAL + PROBE_TIMEOUT + 10);
    expect(m.stats.fallbacks).toBe(1);
    active(2000);
    expect(m.confirmedPayload).toBe(1472); // searched again, below the failed size
  });

  it('falls back when the egress interface MTU drops, even if large probes still come back', () => {
    // Linux fragments a datagram larger than the egress interface's MTU itself: big probes "work".
    const { m, state, active } = rig();
    m.wake();
    active(300);
    expect(m.confirmedPayload).toBe(8972);
    state.egress = 1500;
    active(PROBE_INTERVAL + 10);
    expect(m.confirmedPayload).toBe(1472);
    active(2000);
    expect(Math.max(...state.sent.slice(-4))).toBe(1472);
  });

  it('does not raise on an acknowledgement with the wrong txid or size', () => {
    const { clock, m, state } = rig({ answer: () => false });
    const seen: Uint8Array[] = [];
    const m2 = new PeerMtu(clock, {
      directPath: () => state.path,
      egressMtu: () => 9000,
      sendProbe: (txid) => seen.push(txid),
      lastSend: () => clock.now(),
      changed: () => {},
    });
    m2.wake();
    expect(seen).toHaveLength(1);
    expect(m2.handleAck(new Uint8Array(12), 1472)).toBe(false); // unknown txid
    expect(m2.handleAck(seen[0]!, 8972)).toBe(false); // a bigger size than the one probed
    expect(m2.innerMtu).toBe(BASE_INNER_MTU);
    expect(m2.handleAck(seen[0]!, 1472)).toBe(true);
    expect(m2.handleAck(seen[0]!, 1472)).toBe(false); // replayed
    expect(m2.innerMtu).toBe(1440);
    m.close();
    m2.close();
  });

  it('keeps a peer that never acknowledges (tailscaled, wireguard-go) at 1,420', () => {
    const { m, state, active } = rig({ answer: () => false });
    m.wake();
    active(RETRY_FAILED_AFTER * 2 + 1000);
    expect(m.innerMtu).toBe(BASE_INNER_MTU);
    expect(state.changes).toEqual([]);
    expect(state.sent.every((s) => s === 1472)).toBe(true); // the first size, retried on the timer
    expect(state.sent.length).toBeLessThanOrEqual(4);
  });

  it('never probes or raises over DERP', () => {
    const { m, state, active } = rig({ path: undefined });
    m.wake();
    active(5000);
    expect(state.sent).toEqual([]);
    expect(m.innerMtu).toBe(BASE_INNER_MTU);
  });

  it('falls back when the direct path moves to DERP or another address', () => {
    const { m, state, active } = rig();
    m.wake();
    active(300);
    expect(m.innerMtu).toBe(8928);
    state.path = undefined;
    active(PROBE_INTERVAL);
    expect(m.innerMtu).toBe(BASE_INNER_MTU);
    state.path = { key: '198.51.100.9:41641', ip: '198.51.100.9', v6: false };
    active(300);
    expect(m.innerMtu).toBe(8928);
  });

  it('raises nothing where the egress interface MTU is unknown', () => {
    const { m, state, active } = rig();
    state.egress = undefined as unknown as number;
    m.wake();
    active(2000);
    expect(state.sent).toEqual([]);
    expect(m.innerMtu).toBe(BASE_INNER_MTU);
  });

  it('leaves no timer behind after close', () => {
    const { clock, m, active } = rig();
    m.wake();
    active(300);
    m.close();
    clock.advance(1);
    expect(clock.pending).toBe(0);
  });
});

describe('MTU probe disco messages', () => {
  const a = generateDiscoKey();
  const b = generateDiscoKey();
  const txid = new Uint8Array(12).fill(9);
  it('seal to exactly the probed size and carry the received size back', () => {
    const pkt = sealDisco(a, discoShared(a, b.publicKey), {
      type: 'mtuProbe',
      txid,
      padding: mtuProbePadding(8972),
    });
    expect(pkt.length).toBe(8972);
    const got = openDisco(discoShared(b, a.publicKey), pkt);
    expect(got).toEqual({ type: 'mtuProbe', txid, padding: mtuProbePadding(8972) });
    const ack = sealDisco(b, discoShared(b, a.publicKey), { type: 'mtuAck', txid, size: pkt.length });
    expect(openDisco(discoShared(a, b.publicKey), ack)).toEqual({ type: 'mtuAck', txid, size: 8972 });
  });
  it('reject an ack sealed by anyone but the peer', () => {
    const mallory = generateDiscoKey();
    const forged = sealDisco(mallory, discoShared(mallory, a.publicKey), {
      type: 'mtuAck',
      txid,
      size: 8972,
    });
    forged.set(b.publicKey, 6); // claims to be from b
    expect(openDisco(discoShared(a, b.publicKey), forged)).toBeUndefined();
  });
});
