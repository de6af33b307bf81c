/**
 * `npm run soak -- [MINUTES]` (default 15): two of our nodes and a real tailscaled move traffic
 * without pause for MINUTES, on our control server and DERP relay (TLS, pinned), through
 *   - many WireGuard rekeys: our nodes' WireGuard timers run 12× fast (REKEY_AFTER_TIME every
 *     10 s; TailnetOptions.wireguardClock), against each other and against tailscaled;
 *   - a control-server restart at one third of the run (nodes reconnect their map streams);
 *   - a DERP relay restart at two thirds (node B relays everything, so its flows must ride it out).
 * Six flows, each one TCP connection for the whole run with every echoed byte compared:
 * A→B, B→A and A→tailscaled, B→tailscaled over the tailnet, tailscaled→A and tailscaled→B through
 * tailscaled's SOCKS5. Passes when no flow lost, changed or stalled for good a byte, every pair
 * rekeyed, and neither of our nodes' RSS grew past its early level by more than max(10 MB, 15%)
 * (tailscaled's is shown beside them).
 * Each of our nodes runs in its own process (bench/soak-node.ts). Exit status 0 on a pass.
 */
import { type ChildProcess, fork } from 'node:child_process';
import { readFileSync } from 'node:fs';
import net from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ControlServer } from '../src/control/server/server.js';
import { DerpHttpServer } from '../src/derp/http-server.js';
import { loadOrCreateCertificate } from '../src/derp/self-signed.js';
import { localDerpMap } from '../src/tailnet/local.js';
import { freePort, missingPeers, Tailscaled, tempDir } from '../test/interop/control-peers.js';
import { Cleanup, sleep, waitFor } from '../test/interop/rig/exec.js';
import { EchoFlow, echo, type FlowReport } from './soak-flow.js';
import { ECHO_PORT, type SoakNodeReport, type SoakNodeRequest, type SoakNodeSetup } from './soak-node.js';

const MB = 1024 * 1024;
const CLOCK_FACTOR = 12;
const FLOW = { rate: 256 * 1024, window: 512 * 1024 };
const SAMPLE_MS = 10_000;

/** Resident set size of a process, from /proc (bytes). */
function rssOf(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (!m) throw new Error(`no VmRSS for pid ${pid}`);
  return Number(m[1]) * 1024;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? Number.NaN;
const mb = (n: number) => `${(n / MB).toFixed(1)} MB`;
const log = (t0: number, msg: string) =>
  console.log(`[${((performance.now() - t0) / 1000).toFixed(0).padStart(4)} s] ${msg}`);

/** Our relay and control server, each restartable on its own port with its own state. */
class Infrastructure {
  derp!: DerpHttpServer;
  control!: ControlServer;
  private derpPort = 0;
  private stunPort = 0;
  private controlPort = 0;
  constructor(private readonly dir: string) {}

  async startDerp(): Promise<void> {
    const tls = await loadOrCreateCertificate(this.dir, '127.0.0.1');
    this.derp = await DerpHttpServer.listen({
      host: '127.0.0.1',
      port: this.derpPort,
      stunPort: this.stunPort,
      tls,
      acceptPlainHttp: true,
    });
    this.derpPort = this.derp.port;
    this.stunPort = this.derp.stun!.port;
  }

  async startControl(): Promise<string> {
    const tls = await loadOrCreateCertificate(this.dir, '127.0.0.1');
    this.control = await ControlServer.create({
      stateDir: join(this.dir, 'control'),
      derpMap: localDerpMap(this.derp, '127.0.0.1', tls.certName),
    });
    const url = await this.control.listen(this.controlPort, '127.0.0.1');
    this.controlPort = Number(new URL(url).port);
    return url;
  }
}

/** A node of ours in its own process. */
interface Node {
  pid: number;
  name: string;
  ask(req: SoakNodeRequest): Promise<SoakNodeReport>;
}

async function startNode(
  cleanup: Cleanup,
  setup: Omit<SoakNodeSetup, 'port' | 'clockFactor'>,
): Promise<Node> {
  const here = dirname(fileURLToPath(import.meta.url));
  const child: ChildProcess = fork(join(here, 'soak-node.js'), [], {
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const exited = new Promise<void>((res) => child.once('exit', () => res()));
  cleanup.add(`stop ${setup.hostname}`, async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(timer);
  });
  // One request at a time per node; replies come in order.
  const waiting: { res(r: SoakNodeReport): void; rej(e: Error): void }[] = [];
  child.on('message', (m) => waiting.shift()?.res(m as SoakNodeReport));
  child.once('exit', (code) => {
    for (const w of waiting.splice(0)) w.rej(new Error(`${setup.hostname} exited (${code})`));
  });
  const reply = () => new Promise<SoakNodeReport>((res, rej) => waiting.push({ res, rej }));
  const first = reply();
  child.send({ ...setup, port: await freePort(), clockFactor: CLOCK_FACTOR } satisfies SoakNodeSetup);
  await first;
  return {
    pid: child.pid!,
    name: setup.hostname,
    ask: (req) => {
      const got = reply();
      child.send(req);
      return got;
    },
  };
}

/** A connection through tailscaled's SOCKS5 server (no authentication) to `host:port`. */
function socksConnect(socksPort: number, host: string, port: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect(socksPort, '127.0.0.1');
    let stage = 0;
    let buf = Buffer.alloc(0);
    s.on('error', reject);
    s.on('connect', () => s.write(Buffer.from([5, 1, 0])));
    const onData = (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      if (stage === 0 && buf.length >= 2) {
        if (buf[1] !== 0) return reject(new Error(`SOCKS5: method ${buf[1]}`));
        buf = buf.subarray(2);
        stage = 1;
        s.write(Buffer.from([5, 1, 0, 1, ...host.split('.').map(Number), port >> 8, port & 0xff]));
      }
      if (stage === 1 && buf.length >= 10) {
        if (buf[1] !== 0) return reject(new Error(`SOCKS5 CONNECT ${host}:${port}: reply ${buf[1]}`));
        s.off('data', onData);
        s.off('error', reject);
        resolve(s);
      }
    };
    s.on('data', onData);
  });
}

interface Samples {
  [process: string]: number[];
}

/** Growth of RSS from the early level (after warm-up) to the late one, with the verdict. */
function rssVerdict(samples: number[]): { early: number; late: number; ok: boolean } {
  const quarter = Math.max(1, Math.floor(samples.length / 4));
  const early = median(samples.slice(quarter, 2 * quarter));
  const late = median(samples.slice(-quarter));
  return { early, late, ok: late - early <= Math.max(10 * MB, 0.15 * early) };
}

async function main(): Promise<number> {
  const minutes = Number(process.argv[2] ?? 15);
  if (!(minutes > 0)) {
    console.error(`usage: npm run soak -- [MINUTES]   (default 15; got ${process.argv[2]})`);
    return 2;
  }
  const missing = missingPeers(['tailscaled', 'tailscale']);
  if (missing.length > 0) {
    console.error(`soak: missing ${missing.join(', ')}`);
    return 2;
  }
  const runMs = minutes * 60_000;
  const cleanup = new Cleanup();
  const t0 = performance.now();
  try {
    const dir = await tempDir(cleanup, 'qs-soak-');
    const infra = new Infrastructure(dir);
    await infra.startDerp();
    cleanup.add('derp', () => infra.derp.close());
    const controlURL = await infra.startControl();
    cleanup.add('control', () => infra.control.close());
    const key = await infra.control.createAuthKey({ reusable: true });

    // tailscaled forwards inbound tailnet TCP to this host's 127.0.0.1: our echo on the same port.
    const echoPort = await freePort();
    const echoServer = net.createServer({ allowHalfOpen: true }, echo);
    await new Promise<void>((r) => echoServer.listen(echoPort, '127.0.0.1', r));
    cleanup.add('echo', () => new Promise((r) => echoServer.close(r)));
    const socksPort = await freePort();
    // TLS to our relay, as a user's tailscaled would (the rig's default is plain HTTP).
    const ts = await Tailscaled.start(cleanup, 'soak', {
      socks5Port: socksPort,
      env: { TS_DEBUG_USE_DERP_HTTP: '0' },
    });
    await ts.up(controlURL, key, 'soak-ts');
    const a = await startNode(cleanup, { controlURL, authKey: key, hostname: 'soak-a', derpOnly: false });
    const b = await startNode(cleanup, { controlURL, authKey: key, hostname: 'soak-b', derpOnly: true });
    const tsIp = (await ts.status()).Self.TailscaleIPs.find((x) => x.startsWith('100.'))!;
    const aIp = (await a.ask({ cmd: 'report' })).address;
    const bIp = (await b.ask({ cmd: 'report' })).address;
    await waitFor(
      'tailscaled to see both our nodes with a relay',
      async () => {
        const peers = Object.values((await ts.status()).Peer ?? {});
        return ['soak-a', 'soak-b'].every((h) => peers.some((p) => p.HostName === h && p.Relay)) || undefined;
      },
      60_000,
      500,
    );
    log(
      t0,
      `up: a ${aIp}, b ${bIp} (DERP only), tailscaled ${tsIp}; ${minutes} min, WireGuard clock ×${CLOCK_FACTOR}`,
    );

    await a.ask({
      cmd: 'flows',
      targets: [
        { name: 'a→b', host: bIp, port: ECHO_PORT },
        { name: 'a→ts', host: tsIp, port: echoPort },
      ],
      ...FLOW,
    });
    await b.ask({
      cmd: 'flows',
      targets: [
        { name: 'b→a', host: aIp, port: ECHO_PORT },
        { name: 'b→ts', host: tsIp, port: echoPort },
      ],
      ...FLOW,
    });
    const tsFlows = [
      new EchoFlow('ts→a', await socksConnect(socksPort, aIp, ECHO_PORT), FLOW),
      new EchoFlow('ts→b', await socksConnect(socksPort, bIp, ECHO_PORT), FLOW),
    ];
    for (const f of tsFlows) f.start();

    const rss: Samples = { a: [], b: [], tailscaled: [] };
    const events: string[] = [];
    const restarts = [
      {
        at: runMs / 3,
        what: 'control server',
        run: async () => {
          await infra.control.close();
          await sleep(3000);
          await infra.startControl();
        },
      },
      {
        at: (2 * runMs) / 3,
        what: 'DERP relay',
        run: async () => {
          await infra.derp.close();
          await sleep(3000);
          await infra.startDerp();
        },
      },
    ];
    let lastSample: SoakNodeReport[] = [];
    const sample = async () => {
      const [ra, rb] = await Promise.all([a.ask({ cmd: 'report' }), b.ask({ cmd: 'report' })]);
      lastSample = [ra, rb];
      rss.a!.push(ra.rss);
      rss.b!.push(rb.rss);
      rss.tailscaled!.push(rssOf(ts.proc!.pid));
      const all = [...ra.flows, ...rb.flows, ...tsFlows.map((f) => f.report())];
      const verified = all.reduce((sum, f) => sum + f.verifiedBytes, 0);
      const failed = all.filter((f) => f.failure);
      log(
        t0,
        `${(verified / MB).toFixed(0)} MB verified; rss a ${mb(ra.rss)}, b ${mb(rb.rss)}, tailscaled ${mb(rss.tailscaled!.at(-1)!)}; ` +
          `handshakes a ${JSON.stringify(ra.handshakes)} b ${JSON.stringify(rb.handshakes)}; ` +
          `MB per flow ${all.map((f) => `${f.name} ${(f.verifiedBytes / MB).toFixed(1)}`).join(', ')}; ` +
          `paths a ${JSON.stringify(ra.paths)} b ${JSON.stringify(rb.paths)}` +
          (failed.length ? `; FAILING: ${failed.map((f) => `${f.name}: ${f.failure}`).join(', ')}` : ''),
      );
    };
    const start = performance.now();
    let nextSample = SAMPLE_MS;
    for (;;) {
      const elapsed = performance.now() - start;
      if (elapsed >= runMs) break;
      const due = restarts[0];
      if (due && due.at <= elapsed) {
        restarts.shift();
        log(t0, `restarting the ${due.what}`);
        await due.run();
        events.push(`${due.what} restarted at ${Math.round(due.at / 1000)} s`);
        log(t0, `${due.what} back`);
        continue;
      }
      await sleep(Math.max(0, Math.min(nextSample, runMs, due?.at ?? runMs) - elapsed));
      if (performance.now() - start >= nextSample) {
        nextSample += SAMPLE_MS;
        await sample();
      }
    }

    // Every flow ends (its last bytes back) before any node goes away.
    const [fa, fb] = await Promise.all([
      a.ask({ cmd: 'stop-flows' }),
      b.ask({ cmd: 'stop-flows' }),
      ...tsFlows.map((f) => f.stop().then(() => undefined)),
    ]);
    await Promise.all([a.ask({ cmd: 'stop' }), b.ask({ cmd: 'stop' })]);
    return verdict(
      minutes,
      [...fa.flows, ...fb.flows, ...tsFlows.map((f) => f.report())],
      fa,
      fb,
      rss,
      events,
      lastSample,
    );
  } finally {
    const errors = await cleanup.run();
    if (errors.length) console.error(errors.map((e) => e.message).join('\n'));
  }
}

function verdict(
  minutes: number,
  flows: FlowReport[],
  a: SoakNodeReport,
  b: SoakNodeReport,
  rss: Samples,
  events: string[],
  lastSample: SoakNodeReport[],
): number {
  const problems: string[] = [];
  console.log(`\nsoak: ${minutes} min; ${events.join('; ')}`);
  for (const f of flows) {
    console.log(
      `  flow ${f.name.padEnd(5)} ${(f.verifiedBytes / MB).toFixed(1).padStart(8)} MB sent and echoed intact, ` +
        `longest stall ${(f.longestStallMs / 1000).toFixed(1)} s${f.failure ? `  FAILED: ${f.failure}` : ''}`,
    );
    if (f.failure || f.corruptBytes > 0 || f.verifiedBytes !== f.sentBytes || f.sentBytes === 0)
      problems.push(`flow ${f.name}: ${f.failure ?? 'not every byte came back'}`);
  }
  // A stuck connection's control blocks at both ends (at the last sample, before the flows
  // stopped), for whoever debugs it.
  if (flows.some((f) => f.failure))
    for (const [i, r] of lastSample.entries())
      console.log(`  TCP state at ${i ? 'b' : 'a'}: ${JSON.stringify(r.tcp)}`);
  // A pair rekeys every 10 s (REKEY_AFTER_TIME at ×12), whichever side initiates.
  const wantRekeys = Math.max(2, Math.floor((minutes * 60) / 20));
  for (const [node, seen] of [
    ['a', a.handshakes],
    ['b', b.handshakes],
  ] as const) {
    console.log(`  handshakes seen by ${node}: ${JSON.stringify(seen)}`);
    for (const peer of Object.keys(seen).length ? Object.keys(seen) : ['(none)'])
      if ((seen[peer] ?? 0) < wantRekeys)
        problems.push(`${node}↔${peer}: ${seen[peer] ?? 0} handshakes, want ≥ ${wantRekeys}`);
  }
  // Ours must stay flat; tailscaled's is shown beside them for comparison.
  for (const [proc, samples] of Object.entries(rss)) {
    const v = rssVerdict(samples);
    const judged = proc !== 'tailscaled';
    const mark = judged ? (v.ok ? '' : '  GREW') : '  (reference)';
    console.log(
      `  rss ${proc.padEnd(10)} early ${mb(v.early)}, late ${mb(v.late)} (${samples.length} samples)${mark}`,
    );
    if (judged && !v.ok) problems.push(`node ${proc}: RSS grew from ${mb(v.early)} to ${mb(v.late)}`);
  }
  console.log(problems.length ? `\nsoak FAILED:\n  ${problems.join('\n  ')}` : '\nsoak passed');
  return problems.length ? 1 : 0;
}

process.exitCode = await main();
