import { createHash, randomBytes } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { CryptoPool } from '../../../src/wireguard/pool/crypto-pool.js';
import { PooledQueue } from '../../../src/wireguard/pool/pooled-queue.js';
import type { SealVector } from '../../../src/wireguard/vector.js';
import { WasmAead } from '../../../src/wireguard/wasm/wasm-aead.js';
import { devicePair, ipv4, settle } from '../helpers.js';

const pools: CryptoPool[] = [];
afterEach(async () => {
  for (const p of pools.splice(0)) await p.close();
});

function pool(workers: number): CryptoPool {
  const p = CryptoPool.create(workers);
  if (!p) throw new Error('this runtime has no SharedArrayBuffer or Atomics.waitAsync');
  pools.push(p);
  return p;
}

const inline = WasmAead.create()!;
const key = inline.prepareKey(randomBytes(32));

/** Whether every call to `until` is true within `ms` (polling the event loop). */
async function waitUntil(until: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!until()) {
    if (Date.now() > end) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 1));
  }
}

describe('crypto pool: vectors', () => {
  it('seals the same bytes as the main thread, vectors back in submission order over 3 workers', async () => {
    const p = pool(3);
    const got: Array<{ v: number; messages: Buffer[] }> = [];
    const q = new PooledQueue(p, 'seal', (vec: SealVector, v) => {
      const messages: Buffer[] = [];
      for (let i = 0; i < vec.count; i++) messages.push(Buffer.from(vec.message(i)));
      got.push({ v, messages });
    });
    const plaintexts: Uint8Array[][] = [];
    let counter = 0;
    // More vectors than lanes (6), submitted without yielding: the queue blocks on the oldest.
    for (let b = 0; b < 20; b++) {
      const burst = Array.from({ length: 1 + (b % 7) * 9 }, (_, i) => randomBytes(16 * (1 + ((b + i) % 90))));
      plaintexts.push(burst);
      for (const pt of burst) expect(q.current.add(key, 7, counter++, pt, pt.length)).toBe(true);
      q.submit();
    }
    await waitUntil(() => got.length === 20);
    counter = 0;
    for (let b = 0; b < 20; b++) {
      expect(got[b]!.messages.length).toBe(plaintexts[b]!.length);
      for (let i = 0; i < plaintexts[b]!.length; i++) {
        const pt = plaintexts[b]![i]!;
        const want = inline.seal(key, 7, counter++, pt, pt.length);
        expect(got[b]!.messages[i]!.equals(want)).toBe(true);
      }
    }
    // Round robin: consecutive vectors went to different lanes.
    expect(new Set(got.slice(0, 6).map((g) => g.v)).size).toBe(6);
  });

  it('opens what the main thread sealed, and fails a forged tag', async () => {
    const p = pool(2);
    const opened: Array<Buffer | undefined> = [];
    const q = new PooledQueue(p, 'open', (vec, _v) => {
      for (let i = 0; i < vec.count; i++) {
        const pt = vec.plaintext(i);
        opened.push(pt ? Buffer.from(pt) : undefined);
      }
    });
    const plain = Array.from({ length: 50 }, (_, i) => randomBytes(16 + 32 * i));
    plain.forEach((pt, i) => {
      const msg = inline.seal(key, 1, i, pt, pt.length);
      if (i === 13) msg[msg.length - 1]! ^= 1;
      expect(q.current.add(key, i, msg)).toBe(true);
      if (i % 10 === 9) q.submit();
    });
    await waitUntil(() => opened.length === 50);
    plain.forEach((pt, i) => {
      if (i === 13) expect(opened[i]).toBeUndefined();
      else expect(opened[i]?.equals(pt)).toBe(true);
    });
  });

  it('a worker that dies: its lanes are run on the main thread, the other worker goes on, bytes right', async () => {
    const errors: string[] = [];
    const p = CryptoPool.create(2, (err) => errors.push(err.message))!;
    pools.push(p);
    const sealed: Buffer[] = [];
    const q = new PooledQueue(p, 'seal', (vec) => {
      for (let i = 0; i < vec.count; i++) sealed.push(Buffer.from(vec.message(i)));
    });
    await (p as unknown as { workers: Array<{ terminate(): Promise<number> }> }).workers[0]!.terminate();
    await waitUntil(() => errors.length > 0);
    const plain = Array.from({ length: 40 }, (_, i) => randomBytes(64 + 16 * i));
    plain.forEach((pt, i) => {
      q.current.add(key, 1, i, pt, pt.length);
      if (i % 4 === 3) q.submit();
    });
    await waitUntil(() => sealed.length === 40);
    const want = plain.map((pt, i) => Buffer.from(inline.seal(key, 1, i, pt, pt.length)));
    expect(sealed.every((s, i) => s.equals(want[i]!))).toBe(true);
    expect(errors).toEqual([expect.stringMatching(/^crypto worker 0 exited .*main thread does its work/)]);
    expect(p.failure?.message).toBe(errors[0]);
  });

  it('refuses a worker count out of range', () => {
    expect(() => CryptoPool.create(0)).toThrow(RangeError);
    expect(() => CryptoPool.create(1.5)).toThrow(/integer from 1 to 64/);
  });
});

describe('crypto pool: a device pair', () => {
  it('a bind that throws: reported to the logger, not thrown; the next burst arrives', async () => {
    const warnings: string[] = [];
    const logger = { debug() {}, info() {}, warn: (m: string) => warnings.push(m) };
    const pair = devicePair({ device: { cryptoWorkers: 1, logger } });
    try {
      pair.a.writePacket(ipv4('10.0.0.1', '10.0.0.2'));
      await waitUntil(() => pair.received.b.length === 1);
      const send = pair.bindA.send.bind(pair.bindA);
      pair.bindA.send = () => {
        throw new Error('socket gone');
      };
      pair.a.beginBurst();
      for (let i = 0; i < 3; i++) pair.a.writePacket(ipv4('10.0.0.1', '10.0.0.2', new Uint8Array([i])));
      pair.a.endBurst();
      await waitUntil(() => warnings.length > 0);
      expect(warnings).toEqual(['transport: socket gone']);
      pair.bindA.send = send;
      pair.a.beginBurst();
      for (let i = 0; i < 2; i++) pair.a.writePacket(ipv4('10.0.0.1', '10.0.0.2', new Uint8Array([10 + i])));
      pair.a.endBurst();
      await waitUntil(() => pair.received.b.length === 3);
      expect(pair.received.b.slice(1).map((p) => p[20])).toEqual([10, 11]);
    } finally {
      await pair.close();
    }
  });

  it('3,000 packets each way in bursts: all delivered, in order, bytes intact', async () => {
    const pair = devicePair({ bothEndpoints: true, device: { cryptoWorkers: 2 } });
    try {
      expect(pair.a.cryptoPool?.workerCount).toBe(2);
      pair.a.writePacket(ipv4('10.0.0.1', '10.0.0.2'));
      await waitUntil(() => pair.received.b.length === 1);
      const sent = { a: createHash('sha256'), b: createHash('sha256') };
      for (let burst = 0; burst < 100; burst++) {
        pair.a.beginBurst();
        pair.b.beginBurst();
        for (let i = 0; i < 30; i++) {
          const seq = burst * 30 + i;
          const payload = randomBytes(8 + ((seq * 37) % 1300));
          payload.writeUInt32BE(seq, 0);
          const toB = ipv4('10.0.0.1', '10.0.0.2', payload);
          const toA = ipv4('10.0.0.2', '10.0.0.1', payload);
          sent.a.update(toB);
          sent.b.update(toA);
          pair.a.writePacket(toB);
          pair.b.writePacket(toA);
        }
        pair.a.endBurst();
        pair.b.endBurst();
        if (burst % 10 === 0) await settle(1);
      }
      await waitUntil(() => pair.received.b.length === 3001 && pair.received.a.length === 3000);
      const atB = pair.received.b.slice(1);
      const atA = pair.received.a;
      const seqs = (ps: Uint8Array[]) => ps.map((p) => Buffer.from(p).readUInt32BE(20));
      expect(seqs(atB)).toEqual(seqs(atB).map((_, i) => i));
      expect(seqs(atA)).toEqual(seqs(atA).map((_, i) => i));
      const hash = (ps: Uint8Array[]) => ps.reduce((h, p) => h.update(p), createHash('sha256')).digest('hex');
      expect(hash(atB)).toBe(sent.a.digest('hex'));
      expect(hash(atA)).toBe(sent.b.digest('hex'));
      expect(pair.a.stats.decryptFailed + pair.b.stats.decryptFailed).toBe(0);
    } finally {
      await pair.close();
    }
  });
});
