/**
 * DERP relay benchmarks (issue: throughput in MB/s and packets/s for 2 and 100 clients through
 * our server and through derper in the same run, as ratios; memory per connected client).
 * Each server runs alone in its own process; the clients (ours, identical for both servers)
 * share the benchmark process. Every client sends 1400-byte packets to its partner with at most
 * WINDOW packets in flight (derper drops from a 32-packet queue under overload, so an unpaced
 * flood measures queue policy, not relaying); throughput is what the receivers count.
 */
import { type ChildProcess, fork, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { connect as netConnect } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DerpClient } from '../src/derp/client.js';
import { generateNodeKeyPair } from '../src/derp/keys.js';
import { Report } from './report.js';

const PACKET = 1400;
const SECONDS = 3;
const MEMORY_CLIENTS = 500;
/** Packets in flight per sender: derper's per-client queue depth. */
const WINDOW = 32;
const PEERS_BIN = process.env.PEERS_BIN ?? '/opt/tsbin';

interface Target {
  name: string;
  url: string;
  /** Resident memory of the server process in bytes. */
  rss(): Promise<number>;
  stop(): Promise<void>;
}

export async function run(): Promise<Report> {
  const r = new Report('derp');
  const ours = await startOurs();
  let derper: Target | undefined;
  try {
    derper = await startDerper();
  } catch (err) {
    console.log(
      `  derper unavailable (${err instanceof Error ? err.message : String(err)}): no reference figures`,
    );
  }
  try {
    for (const t of derper ? [derper, ours] : [ours]) {
      const m = await memory(t);
      const label = t === ours ? 'ours' : 'derper';
      r.add({
        name: `${label} memory per client (${MEMORY_CLIENTS} idle)`,
        value: m.perClient / 1024,
        unit: 'KiB',
        note: `RSS ${(m.total / 2 ** 20).toFixed(1)} MiB with ${MEMORY_CLIENTS} clients`,
      });
    }
    for (const n of [2, 100]) {
      const ref = derper ? await flood(derper, n) : undefined;
      const our = await flood(ours, n);
      if (ref) {
        r.add({
          name: `derper ${n} clients`,
          value: ref.mbps,
          unit: 'MB/s',
          note: `${Math.round(ref.pps)} pkt/s`,
        });
        r.add({ name: `derper ${n} clients pkt/s`, value: ref.pps, unit: 'pkt/s' });
      }
      r.add({
        name: `ours ${n} clients`,
        value: our.mbps,
        unit: 'MB/s',
        ratioTo: ref && `derper ${n} clients`,
        note: `${Math.round(our.pps)} pkt/s`,
      });
      r.add({
        name: `ours ${n} clients pkt/s`,
        value: our.pps,
        unit: 'pkt/s',
        ratioTo: ref && `derper ${n} clients pkt/s`,
      });
    }
    if (derper) {
      // Overload: no window, only the socket's backpressure. derper keeps latency low by dropping
      // from its 32-packet queue; we buffer up to 256 KiB of socket data per client first.
      const ref = await flood(derper, 2, Number.POSITIVE_INFINITY);
      const our = await flood(ours, 2, Number.POSITIVE_INFINITY);
      r.add({
        name: 'derper 2 clients unpaced',
        value: ref.mbps,
        unit: 'MB/s',
        note: `${ref.lossPct.toFixed(1)}% lost`,
      });
      r.add({
        name: 'ours 2 clients unpaced',
        value: our.mbps,
        unit: 'MB/s',
        ratioTo: 'derper 2 clients unpaced',
        note: `${our.lossPct.toFixed(1)}% lost`,
      });
    }
  } finally {
    await ours.stop();
    await derper?.stop();
  }
  const ratio = r.ratio('ours 2 clients', 'derper 2 clients');
  if (ratio !== undefined) console.log(`  ours / derper at 2 clients: ${ratio.toFixed(2)}× (aim ≥ 1)`);
  return r;
}

async function startOurs(): Promise<Target> {
  const here = dirname(fileURLToPath(import.meta.url));
  const child: ChildProcess = fork(join(here, 'derp-server.js'), [], {
    execArgv: ['--expose-gc'],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const port = await new Promise<number>((res) =>
    child.once('message', (m: { port: number }) => res(m.port)),
  );
  return {
    name: 'ours',
    url: `http://127.0.0.1:${port}/derp`,
    rss: () =>
      new Promise((res) => {
        child.once('message', (m: { rss: number }) => res(m.rss));
        child.send({ cmd: 'mem' });
      }),
    stop: async () => {
      child.send({ cmd: 'stop' });
      await new Promise((res) => child.once('exit', res));
    },
  };
}

function tcpOpen(port: number): Promise<boolean> {
  return new Promise((res) => {
    const s = netConnect({ host: '127.0.0.1', port });
    s.once('connect', () => {
      s.destroy();
      res(true);
    });
    s.once('error', () => res(false));
  });
}

async function startDerper(): Promise<Target> {
  const dir = mkdtempSync(join(tmpdir(), 'qs-bench-derper-'));
  const port = 20_000 + Math.floor(Math.random() * 20_000);
  const child = spawn(
    join(PEERS_BIN, 'derper'),
    ['-a', `127.0.0.1:${port}`, '-stun=false', '-c', join(dir, 'k')],
    { stdio: 'ignore' },
  );
  const exited = new Promise((res) => child.once('exit', res));
  let spawnError: Error | undefined;
  child.once('error', (err) => {
    spawnError = err;
  });
  for (let i = 0; i < 100 && !(await tcpOpen(port)); i++) await new Promise((res) => setTimeout(res, 50));
  if (!(await tcpOpen(port))) {
    child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
    throw new Error(`derper did not listen on ${port}${spawnError ? `: ${spawnError.message}` : ''}`);
  }
  return {
    name: 'derper',
    url: `http://127.0.0.1:${port}/derp`,
    rss: async () => {
      const status = readFileSync(`/proc/${child.pid}/status`, 'utf8');
      return Number(/VmRSS:\s+(\d+) kB/.exec(status)?.[1] ?? 0) * 1024;
    },
    stop: async () => {
      child.kill('SIGTERM');
      await exited;
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

async function connectMany(url: string, n: number): Promise<DerpClient[]> {
  const out: DerpClient[] = [];
  for (let i = 0; i < n; i += 50) {
    const batch = Array.from({ length: Math.min(50, n - i) }, () =>
      DerpClient.connect({ url, privateKey: generateNodeKeyPair().privateKey }),
    );
    out.push(...(await Promise.all(batch)));
  }
  return out;
}

/** Pairs (0,1), (2,3)…; each sends to its partner, keeping at most WINDOW packets in flight. */
async function flood(
  t: Target,
  n: number,
  window = WINDOW,
): Promise<{ mbps: number; pps: number; lossPct: number }> {
  const clients = await connectMany(t.url, n);
  const packet = new Uint8Array(PACKET);
  const sent = new Array<number>(n).fill(0);
  const got = new Array<number>(n).fill(0);
  let received = 0;
  let counting = false;
  clients.forEach((c, i) => {
    c.onPacket(() => {
      got[i]!++;
      if (counting) received++;
    });
  });
  let running = true;
  const pump = (): void => {
    if (!running) return;
    for (let i = 0; i < n; i++) {
      const partner = i ^ 1;
      const dst = clients[partner]!.publicKey;
      for (
        let k = 0;
        k < 64 && sent[i]! - got[partner]! < window && clients[i]!.bufferedBytes < 1 << 20;
        k++
      ) {
        clients[i]!.send(dst, packet);
        sent[i]!++;
      }
    }
    setImmediate(pump);
  };
  pump();
  await new Promise((res) => setTimeout(res, 500));
  counting = true;
  const start = performance.now();
  await new Promise((res) => setTimeout(res, SECONDS * 1000));
  counting = false;
  const seconds = (performance.now() - start) / 1000;
  running = false;
  const lost = sent.reduce((x, y) => x + y, 0) - got.reduce((x, y) => x + y, 0);
  for (const c of clients) c.close();
  await new Promise((res) => setTimeout(res, 300));
  const total = sent.reduce((x, y) => x + y, 0);
  const pps = received / seconds;
  return { pps, mbps: (pps * PACKET) / 1e6, lossPct: total > 0 ? (100 * Math.max(0, lost)) / total : 0 };
}

async function memory(t: Target): Promise<{ perClient: number; total: number }> {
  const before = await t.rss();
  const clients = await connectMany(t.url, MEMORY_CLIENTS);
  await new Promise((res) => setTimeout(res, 500));
  const after = await t.rss();
  for (const c of clients) c.close();
  await new Promise((res) => setTimeout(res, 300));
  return { perClient: (after - before) / MEMORY_CLIENTS, total: after };
}
