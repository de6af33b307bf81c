// Shared rig for DERP unit tests: an in-process server, logged-in clients, and packet checks.
import { createHash, randomBytes } from 'node:crypto';
import { DerpClient, type DerpClientOptions } from '../../src/derp/client.js';
import { DerpHttpServer, type DerpHttpServerOptions } from '../../src/derp/http-server.js';
import { generateNodeKeyPair } from '../../src/derp/keys.js';

export async function startServer(opts: Partial<DerpHttpServerOptions> = {}): Promise<DerpHttpServer> {
  return DerpHttpServer.listen({ port: 0, ...opts });
}

export async function connect(url: string, opts: Partial<DerpClientOptions> = {}): Promise<DerpClient> {
  return DerpClient.connect({ url, privateKey: generateNodeKeyPair().privateKey, ...opts });
}

export function sha256(b: Uint8Array): string {
  return createHash('sha256').update(b).digest('hex');
}

/** A packet whose first 4 bytes are its sequence number. */
export function numbered(seq: number, size: number): Uint8Array {
  const p = new Uint8Array(randomBytes(size));
  new DataView(p.buffer).setUint32(0, seq);
  return p;
}

/** Resolves with the next `n` packets delivered to `c`. */
export function collect(
  c: DerpClient,
  n: number,
  timeoutMs = 5000,
): Promise<Array<{ src: Uint8Array; data: Uint8Array }>> {
  const got: Array<{ src: Uint8Array; data: Uint8Array }> = [];
  return new Promise((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`got ${got.length} of ${n} packets in ${timeoutMs} ms`)),
      timeoutMs,
    );
    c.onPacket((src, data) => {
      got.push({ src: src.slice(), data: data.slice() });
      if (got.length === n) {
        clearTimeout(timer);
        resolve(got);
      }
    });
  });
}

export function until<T>(what: string, probe: () => T | undefined, timeoutMs = 5000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  return new Promise((resolve, reject) => {
    const tick = (): void => {
      const v = probe();
      if (v !== undefined) {
        resolve(v);
        return;
      }
      if (Date.now() > deadline) {
        reject(new Error(`timed out waiting for ${what}`));
        return;
      }
      setTimeout(tick, 10);
    };
    tick();
  });
}

/**
 * Sends `packets` from `from` to `to` with at most `window` in flight (DERP drops when a client's queue is
 * full, as derpprobe also paces itself), and checks every arrival by source, length and SHA-256, in order.
 */
export async function relayChecked(
  from: DerpClient,
  to: DerpClient,
  packets: Uint8Array[],
  window = 8,
  timeoutMs = 10_000,
): Promise<void> {
  let next = 0;
  let received = 0;
  const problems: string[] = [];
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`relayed ${received} of ${packets.length} packets`)),
      timeoutMs,
    );
    to.onPacket((src, data) => {
      const want = packets[received]!;
      if (Buffer.compare(src, from.publicKey) !== 0) problems.push(`packet ${received}: wrong source`);
      if (data.length !== want.length || sha256(data) !== sha256(want))
        problems.push(`packet ${received}: corrupt`);
      received++;
      if (received === packets.length) {
        clearTimeout(timer);
        resolve();
      } else if (next < packets.length) from.send(to.publicKey, packets[next++]!);
    });
    while (next < Math.min(window, packets.length)) from.send(to.publicKey, packets[next++]!);
  });
  if (problems.length > 0) throw new Error(problems.slice(0, 5).join('; '));
}
