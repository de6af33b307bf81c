/**
 * What a legitimate node sees while a server is attacked: for a relay, the round trip of a
 * packet between two connected clients (A → relay → B → relay → A); for a control server, how
 * long a peer's endpoint change takes to reach another node's map stream; and whether a new
 * client can still connect and log in. All from 127.0.0.1, while the attacks come from other
 * loopback addresses (a real attacker is not the node it hurts).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ControlClient } from '../src/control/client.js';
import { DerpClient } from '../src/derp/client.js';
import { generateNodeKeyPair } from '../src/derp/keys.js';
import type { Target } from './abuse-targets.js';

/** A measurement that did not come back counts as this late. */
export const LOST_MS = 5000;

/** A legitimate node's view of one target. */
export interface Legit {
  /** One measurement in ms (LOST_MS when it did not come back). */
  measure(): Promise<number>;
  /** Whether a new client connects and logs in now (within 10 s). */
  fresh(): Promise<boolean>;
  close(): Promise<void>;
}

function withTimeout<T>(p: Promise<T>, ms: number, fallback: T): Promise<T> {
  return Promise.race([p, new Promise<T>((r) => setTimeout(() => r(fallback), ms).unref())]);
}

/** Two clients on the relay; B echoes what A sends. */
export async function derpLegit(t: Target): Promise<Legit> {
  const connect = () => DerpClient.connect({ url: t.url, privateKey: generateNodeKeyPair().privateKey });
  const a = await connect();
  const b = await connect();
  b.onPacket((src, data) => b.send(src, data));
  let seq = 0;
  const waiting = new Map<number, () => void>();
  a.onPacket((_src, data) => {
    waiting.get(Buffer.from(data.buffer, data.byteOffset, 4).readUInt32BE(0))?.();
  });
  return {
    measure: () => {
      const n = seq++;
      const p = Buffer.alloc(100);
      p.writeUInt32BE(n, 0);
      const t0 = performance.now();
      const back = new Promise<number>((resolve) => waiting.set(n, () => resolve(performance.now() - t0)));
      a.send(b.publicKey, p);
      return withTimeout(back, LOST_MS, LOST_MS).finally(() => waiting.delete(n));
    },
    fresh: () =>
      withTimeout(
        connect().then(
          async (c) => {
            await c.ping();
            c.close();
            return true;
          },
          () => false,
        ),
        10_000,
        false,
      ),
    close: async () => {
      a.close();
      b.close();
    },
  };
}

/** Two nodes on the control server: `updater` changes its endpoints, `observer` streams the map. */
export async function controlLegit(t: Target): Promise<Legit> {
  const dirs: string[] = [];
  const client = async (hostname: string) => {
    const stateDir = await mkdtemp(join(tmpdir(), 'qs-bench-abuse-node-'));
    dirs.push(stateDir);
    const c = await ControlClient.open({ serverURL: t.url, stateDir, hostname, authKey: t.authKey });
    await c.login();
    return c;
  };
  const observer = await client('observer');
  const updater = await client('updater');
  observer.start();
  updater.start();
  const self = (await updater.waitForNetmap()).self.id;
  await observer.waitForNetmap((nm) => nm.peers.has(self));
  let port = 1000;
  const clients: ControlClient[] = [observer, updater];
  return {
    measure: async () => {
      const ep = `192.0.2.1:${++port}`;
      const t0 = performance.now();
      const seen = observer
        .waitForNetmap((nm) => nm.peers.get(self)?.endpoints.includes(ep) ?? false, LOST_MS)
        .then(
          () => performance.now() - t0,
          () => LOST_MS,
        );
      // A send that fails never reaches the observer: it shows as a lost measurement.
      await updater.setEndpoints([ep]).catch(() => {});
      return seen;
    },
    fresh: async () => {
      try {
        const c = await withTimeout(client(`fresh-${port}`), 10_000, undefined);
        if (c === undefined) return false;
        clients.push(c);
        return true;
      } catch {
        return false; // not served: what this reports
      }
    },
    close: async () => {
      for (const c of clients) await c.close();
      for (const d of dirs) await rm(d, { recursive: true, force: true });
    },
  };
}

/** Measurements taken one after another every `everyMs` until stop() (which resolves with them). */
export function sampleWhile(legit: Legit, everyMs: number): { stop(): Promise<number[]> } {
  const out: number[] = [];
  let running = true;
  const loop = (async () => {
    while (running) {
      const started = performance.now();
      out.push(await legit.measure());
      const rest = everyMs - (performance.now() - started);
      if (rest > 0) await new Promise((r) => setTimeout(r, rest));
    }
  })();
  return {
    stop: async () => {
      running = false;
      await loop;
      return out;
    },
  };
}

/** The median of `xs` (NaN for none). */
export function median(xs: readonly number[]): number {
  if (xs.length === 0) return Number.NaN;
  const s = [...xs].sort((x, y) => x - y);
  return s[Math.floor(s.length / 2)]!;
}
