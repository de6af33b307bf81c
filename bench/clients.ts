/**
 * `npm run bench -- clients`: Node's client libraries over the tailnet, three ways in one run —
 * through the new hooks (tn.net's socket, tn.httpsAgent), through `tn.forward` (a loopback
 * listener that dials the tailnet: one more kernel hop), and straight to the server on loopback
 * (the reference). The servers are Debian's PostgreSQL and Redis and a node:https server on this
 * machine's loopback, reached over the tailnet through a real tailscaled (userspace networking
 * forwards inbound tailnet TCP to its loopback), on Headscale + derper; our node is in this process.
 * Rows: pg round trips per second, pg COPY TO STDOUT MB/s, Redis pipelined ops/s, https MB/s and
 * CPU-s per GB, each the median of three rounds that alternate the paths; each hook row's ratio is
 * to its forward row, with the distance to loopback in the note.
 */
import { randomBytes } from 'node:crypto';
import https from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { AbstractConnector, Redis } from 'ioredis';
import pg from 'pg';
import { to as copyTo } from 'pg-copy-streams';
import { Tailnet } from '../src/tailnet/tailnet.js';
import { Derper, freePort, Headscale, Tailscaled, tempDir } from '../test/interop/control-peers.js';
import { startPostgres, startRedis } from '../test/interop/rig/db-servers.js';
import { Cleanup, waitFor } from '../test/interop/rig/exec.js';
import { makeTestCA } from '../test/tailnet/net/tls-ca.js';
import { Report } from './report.js';

const TS = 'bench-db';
const MB = 1024 * 1024;
const RTT_SECONDS = 3;
const COPY_ROWS = 400_000; // ~50 MB of COPY text
const PIPELINES = 20;
const PIPELINE_OPS = 10_000;
const HTTPS_MB = 64;
const ROUNDS = 3;

/** One way to reach a server: host and port as the client sees them, and the socket hook if any. */
interface Path {
  name: 'tn.net hook' | 'tn.forward' | 'loopback';
  host: string;
  port: number;
  socket?: () => Socket;
}

export async function run(): Promise<Report> {
  const r = new Report('clients');
  const cleanup = new Cleanup();
  try {
    await measure(r, cleanup);
  } finally {
    await cleanup.run();
  }
  return r;
}

async function measure(r: Report, cleanup: Cleanup): Promise<void> {
  const pgPort = (await startPostgres(cleanup)).port;
  const redisPort = (await startRedis(cleanup)).port;
  const ca = makeTestCA([TS, '127.0.0.1']);
  const body = randomBytes(MB);
  const web = https.createServer({ cert: ca.cert, key: ca.key }, (req, res) => {
    let left = Number(new URL(req.url ?? '/', 'http://x').searchParams.get('mb'));
    res.writeHead(200, { 'content-length': String(left * MB) });
    const pump = (): void => {
      while (left-- > 0) if (!res.write(body)) return void res.once('drain', pump);
      res.end();
    };
    pump();
  });
  await new Promise<void>((ok) => web.listen(0, '127.0.0.1', ok));
  cleanup.add('https', () => {
    web.closeAllConnections(); // tailscaled's keep-alive connections to it would hold close() forever
    return new Promise((ok) => web.close(() => ok(undefined)));
  });
  const webPort = (web.address() as AddressInfo).port;

  const derper = await Derper.start(cleanup);
  const hs = await Headscale.start(cleanup, { derpPort: derper.port });
  const key = await hs.createKey(await hs.createUser('bench'), { reusable: true });
  const ts = await Tailscaled.start(cleanup, 'bench-db');
  await ts.up(hs.url, key, TS);
  const udp = await freePort();
  const tn = new Tailnet({
    hostname: 'bench-client',
    controlURL: hs.url,
    authKey: key,
    stateDir: await tempDir(cleanup, 'qs-bench-clients-'),
    derpHttp: true,
    port: udp,
    endpoints: [`127.0.0.1:${udp}`],
  });
  cleanup.add('close node', () => tn.close());
  await tn.up();
  // Disco pings until a pong comes over the direct path (loopback UDP), as `tailscale ping` does.
  const direct = async () =>
    (await tn.ping(TS).catch(() => undefined))?.via.startsWith('DERP') === false ? true : undefined;
  await waitFor('the direct path', direct, 30_000, 200);

  const paths = async (port: number): Promise<Path[]> => {
    const fwd = await tn.forward(0, TS, port);
    return [
      { name: 'tn.net hook', host: TS, port, socket: () => new tn.net.Socket() as unknown as Socket },
      { name: 'tn.forward', host: '127.0.0.1', port: (fwd.address() as AddressInfo).port },
      { name: 'loopback', host: '127.0.0.1', port },
    ];
  };
  const report = (what: string, unit: string, values: Map<Path['name'], number>, note: string) => {
    const loop = values.get('loopback')!;
    r.add({ name: `${what}, loopback`, value: loop, unit, note });
    r.add({
      name: `${what}, tn.forward`,
      value: values.get('tn.forward')!,
      unit,
      ratioTo: `${what}, loopback`,
    });
    const hook = values.get('tn.net hook')!;
    r.add({
      name: `${what}, tn.net hook`,
      value: hook,
      unit,
      ratioTo: `${what}, tn.forward`,
      note: `${(hook / loop).toFixed(2)}× loopback`,
    });
  };
  const med = `median of ${ROUNDS}, paths alternating`;

  const pg1 = await medians(await paths(pgPort), async (p) => {
    const client = new pg.Client({
      host: p.host,
      port: p.port,
      user: 'postgres',
      database: 'postgres',
      stream: p.socket,
    });
    await client.connect();
    const out = { rtt: await roundTrips(client), copy: await copyMBps(client) };
    await client.end();
    return out;
  });
  report('pg round trips (SELECT 1)', 'queries/s', pg1.rtt!, `${RTT_SECONDS} s, one connection; ${med}`);
  report('pg COPY TO STDOUT', 'MB/s', pg1.copy!, `${COPY_ROWS.toLocaleString('en-US')} rows; ${med}`);

  const redis1 = await medians(await paths(redisPort), async (p) => {
    const Connector = p.socket ? (connectorFor(tn) as never) : undefined;
    const redis = new Redis({
      host: p.host,
      port: p.port,
      lazyConnect: true,
      ...(Connector ? { Connector } : {}),
    });
    await redis.connect();
    const ops = await pipelined(redis);
    redis.disconnect();
    return { ops };
  });
  report(
    'Redis pipelined SET/GET',
    'ops/s',
    redis1.ops!,
    `${PIPELINES} pipelines of ${PIPELINE_OPS}; ${med}`,
  );

  const web1 = await medians(await paths(webPort), async (p) => {
    const agent = p.socket ? tn.httpsAgent({ ca: ca.ca }) : new https.Agent({ ca: ca.ca, servername: TS });
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    await download(agent, p, HTTPS_MB);
    const seconds = (performance.now() - t0) / 1000;
    const c = process.cpuUsage(c0);
    agent.destroy();
    return { mbps: HTTPS_MB / seconds, cpu: (c.user + c.system) / 1e6 / ((HTTPS_MB * MB) / 1e9) };
  });
  report('https download', 'MB/s', web1.mbps!, `${HTTPS_MB} MB; ${med}`);
  report('https download, this process', 'CPU s/GB', web1.cpu!, 'client and our node; lower is better');
}

/**
 * Runs `measure` on every path once to warm up, then ROUNDS times in turn (so that the shared machine's load falls on
 * every path alike), and gives the median of each figure per path.
 */
async function medians(
  paths: Path[],
  measure: (p: Path) => Promise<Record<string, number>>,
): Promise<Record<string, Map<Path['name'], number>>> {
  const runs: Record<string, Map<Path['name'], number[]>> = {};
  for (const p of paths) await measure(p); // a round to warm up the JIT and the connections' paths, not counted
  for (let round = 0; round < ROUNDS; round++) {
    for (const p of paths) {
      for (const [k, v] of Object.entries(await measure(p))) {
        runs[k] ??= new Map();
        runs[k].set(p.name, [...(runs[k].get(p.name) ?? []), v]);
      }
    }
  }
  const out: Record<string, Map<Path['name'], number>> = {};
  for (const [k, byPath] of Object.entries(runs)) {
    out[k] = new Map([...byPath].map(([name, vs]) => [name, vs.sort((x, y) => x - y)[vs.length >> 1]!]));
  }
  return out;
}

/** Sequential `SELECT 1` for RTT_SECONDS: queries per second. */
async function roundTrips(client: pg.Client): Promise<number> {
  for (let i = 0; i < 100; i++) await client.query('SELECT 1');
  const t0 = performance.now();
  let n = 0;
  while (performance.now() - t0 < RTT_SECONDS * 1000) {
    await client.query('SELECT 1');
    n++;
  }
  return n / ((performance.now() - t0) / 1000);
}

/** COPY (SELECT …) TO STDOUT of ~50 MB of text: MB/s. */
async function copyMBps(client: pg.Client): Promise<number> {
  let bytes = 0;
  const t0 = performance.now();
  await pipeline(
    client.query(
      copyTo(
        `COPY (SELECT i, md5(i::text), repeat('q', 80) FROM generate_series(1, ${COPY_ROWS}) i) TO STDOUT`,
      ),
    ),
    new Writable({
      write(chunk: Buffer, _e, cb) {
        bytes += chunk.length;
        cb();
      },
    }),
  );
  return bytes / MB / ((performance.now() - t0) / 1000);
}

/** PIPELINES pipelines of PIPELINE_OPS alternating SET and GET: ops per second. */
async function pipelined(redis: Redis): Promise<number> {
  const t0 = performance.now();
  for (let p = 0; p < PIPELINES; p++) {
    const pipe = redis.pipeline();
    for (let i = 0; i < PIPELINE_OPS / 2; i++) pipe.set(`k${i}`, 'quack').get(`k${i}`);
    const res = await pipe.exec();
    if (res?.length !== PIPELINE_OPS) throw new Error(`pipeline answered ${res?.length} of ${PIPELINE_OPS}`);
  }
  return (PIPELINES * PIPELINE_OPS) / ((performance.now() - t0) / 1000);
}

/** ioredis's hook: a Connector class whose stream is a tailnet socket (as README shows). */
function connectorFor(tn: Tailnet) {
  return class TailnetConnector extends AbstractConnector {
    constructor(private readonly options: { host: string; port: number }) {
      super(2000);
    }
    connect(): ReturnType<AbstractConnector['connect']> {
      this.connecting = true;
      this.stream = tn.net.connect(this.options.port, this.options.host) as never;
      return Promise.resolve(this.stream!);
    }
  };
}

/** Downloads `mb` MB over https through `agent`, checking the length. */
function download(agent: https.Agent, p: Path, mb: number): Promise<void> {
  return new Promise((resolve, reject) => {
    https
      .get({ host: p.host, port: p.port, path: `/?mb=${mb}`, agent, servername: TS }, (res) => {
        let n = 0;
        res.on('data', (d: Buffer) => (n += d.length));
        res.on('end', () => (n === mb * MB ? resolve() : reject(new Error(`got ${n} of ${mb * MB} bytes`))));
      })
      .on('error', reject);
  });
}
