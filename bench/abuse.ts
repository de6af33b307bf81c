/**
 * `npm run bench -- abuse` (issue 23): our DERP relay beside derper and our control server beside
 * Headscale, in the same run, each under (a) 5,000 silent connections, (b) 5,000 connections
 * sending one header byte a second, (c) 200 handshakes a second from one address, (d) 20
 * connections a second whose frames or bodies declare 2 GB, (e) 100 connect/disconnect cycles a
 * second. For each: the server's RSS (idle → peak) and CPU, how its connections were shed
 * (refused on accept, closed later and when, still open), the latency a legitimate node sees
 * (median before → during), whether a new client is still served, and whether the server
 * survived. Attacks alternate between our server and the reference, so that both meet the same
 * machine. docs/server-limits.md explains the figures.
 */
import { type ChildProcess, fork } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Cleanup } from '../test/interop/rig/exec.js';
import {
  derpHandshake,
  handshakes,
  noiseHandshake,
  type Outcome,
  oversizedBodies,
  oversizedFrames,
  silent,
  slowHeaders,
  waves,
} from './abuse-attacks.js';
import { LOST_MS, median } from './abuse-legit.js';
import type { LegitCommand } from './abuse-legit-node.js';
import { missingPeers, startControlTargets, startDerpTargets, type Target, usage } from './abuse-targets.js';
import { Report } from './report.js';

const CONNECTIONS = 5000;
/** How long (a) and (b) wait for the server to shed: both references close idle requests at 30 s. */
const WAIT_MS = 45_000;
const FLOOD_PER_SECOND = 200;
const CHURN_PER_SECOND = 100;
const SECONDS = 10;
const OVERSIZED = 20;

const range = (prefix: string, n: number) => Array.from({ length: n }, (_, i) => `${prefix}${i + 1}`);

interface Attack {
  id: string;
  label: string;
  run(t: Target): Promise<Outcome>;
}

const ATTACKS: Attack[] = [
  { id: 'a', label: `${CONNECTIONS} silent`, run: (t) => silent(t, CONNECTIONS, '127.0.0.2', WAIT_MS) },
  {
    id: 'b',
    label: `${CONNECTIONS} one byte/s`,
    run: (t) => slowHeaders(t, CONNECTIONS, '127.0.0.3', WAIT_MS),
  },
  {
    id: 'c',
    label: `${FLOOD_PER_SECOND} handshakes/s, one address`,
    run: async (t) =>
      handshakes(
        await (t.kind === 'derp' ? derpHandshake(t) : noiseHandshake(t)),
        FLOOD_PER_SECOND,
        SECONDS,
        ['127.0.0.4'],
      ),
  },
  {
    id: 'd',
    label: `${OVERSIZED} a second declaring 2 GB`,
    run: (t) =>
      waves(SECONDS, () =>
        t.kind === 'derp'
          ? oversizedFrames(t, OVERSIZED, '127.0.0.5')
          : oversizedBodies(t, OVERSIZED, range('127.0.2.', OVERSIZED)),
      ),
  },
  {
    id: 'e',
    label: `${CHURN_PER_SECOND} connect/disconnect/s`,
    run: async (t) =>
      handshakes(
        await (t.kind === 'derp' ? derpHandshake(t) : noiseHandshake(t)),
        CHURN_PER_SECOND,
        SECONDS,
        range('127.0.1.', 250),
      ),
  },
];

/**
 * A legitimate node in a process of its own (abuse-legit-node.ts), so that its latency is the
 * server's doing and not this attacking process's.
 */
class LegitNode {
  readonly #waiting = new Map<string, (reply: Record<string, unknown>) => void>();

  private constructor(readonly child: ChildProcess) {
    child.on('message', (m: Record<string, unknown>) => {
      for (const [key, resolve] of this.#waiting) {
        if (key in m) {
          this.#waiting.delete(key);
          resolve(m);
        }
      }
    });
  }

  static async start(t: Target): Promise<LegitNode> {
    const here = dirname(fileURLToPath(import.meta.url));
    const child = fork(join(here, 'abuse-legit-node.js'), [JSON.stringify(t)], { stdio: 'inherit' });
    const node = new LegitNode(child);
    await node.#ask(undefined, 'ready');
    return node;
  }

  #ask(cmd: LegitCommand | undefined, reply: string): Promise<Record<string, unknown>> {
    const answer = new Promise<Record<string, unknown>>((resolve) => this.#waiting.set(reply, resolve));
    if (cmd) this.child.send(cmd);
    return answer;
  }

  async sample(everyMs: number): Promise<void> {
    await this.#ask({ cmd: 'sample', everyMs }, 'ok');
  }

  async stop(): Promise<number[]> {
    return (await this.#ask({ cmd: 'stop' }, 'samples')).samples as number[];
  }

  async fresh(): Promise<boolean> {
    return (await this.#ask({ cmd: 'fresh' }, 'fresh')).fresh as boolean;
  }

  async close(): Promise<void> {
    const exited = new Promise((r) => this.child.once('exit', r));
    this.child.send({ cmd: 'close' });
    await exited;
  }
}

/** One attack on one target. */
interface Row {
  target: Target;
  attack: Attack;
  /** RSS before the first attack on this target, and before this one. */
  baseRss: number;
  idleRss: number;
  peakRss: number;
  cpu: number;
  outcome: Outcome;
  before: number;
  during: number;
  lost: number;
  fresh: boolean;
  alive: boolean;
}

export async function run(): Promise<Report> {
  const r = new Report('abuse');
  const missing = missingPeers();
  if (missing.length > 0) {
    console.log(`  (skipping: missing ${missing.join(', ')}; run scripts/build-peers.sh)`);
    return r;
  }
  const rows: Row[] = [];
  for (const start of [startDerpTargets, startControlTargets]) {
    const cleanup = new Cleanup();
    try {
      const targets = await start(cleanup);
      const legit = new Map<Target, LegitNode>();
      const baseRss = new Map<Target, number>();
      for (const t of targets) {
        legit.set(t, await LegitNode.start(t));
        baseRss.set(t, usage(t.pid).rss);
      }
      cleanup.add('legitimate nodes', async () => {
        for (const l of legit.values()) await l.close();
      });
      for (const attack of ATTACKS) {
        for (const t of targets) {
          if (!t.isRunning()) continue;
          const row = await measure(t, attack, legit.get(t)!, baseRss.get(t)!);
          rows.push(row);
          console.log(`  ${describe(row)}`);
        }
      }
    } finally {
      const errors = await cleanup.run();
      for (const e of errors) console.log(`  cleanup: ${e.message}`);
    }
  }
  printTable(rows);
  report(r, rows);
  return r;
}

async function measure(t: Target, attack: Attack, legit: LegitNode, baseRss: number): Promise<Row> {
  await new Promise((res) => setTimeout(res, 2000)); // let the last attack's leftovers go
  const everyMs = t.kind === 'derp' ? 100 : 500;
  await legit.sample(everyMs);
  await new Promise((res) => setTimeout(res, 10 * everyMs));
  const before = await legit.stop();
  const u0 = usage(t.pid);
  let peakRss = u0.rss;
  const sampler = setInterval(() => {
    if (t.isRunning()) peakRss = Math.max(peakRss, usage(t.pid).rss);
  }, 250);
  await legit.sample(everyMs);
  // A new client tries its luck once the attack is under way.
  const fresh = new Promise<void>((res) => setTimeout(res, 3000)).then(() => legit.fresh());
  let outcome: Outcome;
  try {
    outcome = await attack.run(t);
  } finally {
    clearInterval(sampler);
  }
  const seen = await legit.stop();
  const alive = t.isRunning();
  return {
    target: t,
    attack,
    baseRss,
    idleRss: u0.rss,
    peakRss,
    cpu: alive ? usage(t.pid).cpu - u0.cpu : Number.NaN,
    outcome,
    before: median(before),
    during: median(seen),
    lost: seen.filter((ms) => ms >= LOST_MS).length,
    fresh: await fresh,
    alive,
  };
}

const mb = (b: number) => (b / 2 ** 20).toFixed(0);

/** How the attack's connections went: refused on accept, shed later (by when), still open. */
function shedText(o: Outcome, attack: Attack): string {
  if (attack.id === 'c' || attack.id === 'e')
    return `${o.completed} of ${o.attempts} completed, ${o.refused} refused`;
  const last = o.shedAtMs.length > 0 ? ` (last at ${(Math.max(...o.shedAtMs) / 1000).toFixed(1)} s)` : '';
  const shed =
    attack.id === 'd' ? `${o.completed} answered/closed${last}` : `${o.shedAtMs.length} closed later${last}`;
  return `${o.refused} refused, ${shed}, ${o.stillOpen} still open`;
}

function describe(row: Row): string {
  return `${row.target.name} (${row.attack.id}): RSS ${mb(row.idleRss)} → ${mb(row.peakRss)} MB, CPU ${row.cpu.toFixed(1)} s, ${shedText(row.outcome, row.attack)}`;
}

function printTable(rows: Row[]): void {
  const unit = (t: Target) => (t.kind === 'derp' ? 'DERP round trip' : 'map update');
  console.log(
    '\n| server | attack | RSS idle → peak | CPU | connections | legitimate node: median before → during | new client served | survived |',
  );
  console.log('|---|---|---|---|---|---|---|---|');
  for (const row of rows) {
    const lost = row.lost > 0 ? `, ${row.lost} lost` : '';
    console.log(
      `| ${row.target.name} | (${row.attack.id}) ${row.attack.label} | ${mb(row.baseRss)} → ${mb(row.peakRss)} MB ` +
        `(${(row.peakRss / row.baseRss).toFixed(1)}×) | ` +
        `${row.cpu.toFixed(1)} s | ${shedText(row.outcome, row.attack)} | ${unit(row.target)} ` +
        `${row.before.toFixed(1)} → ${row.during.toFixed(1)} ms${lost} | ${row.fresh ? 'yes' : 'no'} | ${row.alive ? 'yes' : 'NO'} |`,
    );
  }
  console.log('');
}

/** Rows for the JSON and the chart: each of ours beside the reference's figure for the same attack. */
function report(r: Report, rows: Row[]): void {
  const byAttack = new Map<string, Row[]>();
  for (const row of rows) {
    const key = `${row.target.kind} ${row.attack.id}`;
    byAttack.set(key, [...(byAttack.get(key) ?? []), row]);
  }
  for (const pair of byAttack.values()) {
    const ref = pair.find((x) => !x.target.ours);
    for (const row of [...pair].sort((x, y) => Number(x.target.ours) - Number(y.target.ours))) {
      const name = (what: string) => `${row.target.name} (${row.attack.id}) ${what}`;
      const to = (what: string) =>
        row.target.ours && ref ? `${ref.target.name} (${ref.attack.id}) ${what}` : undefined;
      r.add({ name: name('peak RSS'), value: row.peakRss / 2 ** 20, unit: 'MB', ratioTo: to('peak RSS') });
      r.add({ name: name('CPU'), value: row.cpu, unit: 's', ratioTo: to('CPU') });
      r.add({ name: name('legit latency'), value: row.during, unit: 'ms', ratioTo: to('legit latency') });
      if (row.attack.id === 'a' || row.attack.id === 'b') {
        const o = row.outcome;
        const all = o.stillOpen > 0 ? WAIT_MS : Math.max(0, ...o.shedAtMs);
        r.add({ name: name('all shed by'), value: all / 1000, unit: 's', ratioTo: to('all shed by') });
      }
    }
  }
}
