/**
 * SQL benchmarks (issue 8) on the embedded default tailnet, in one run, each figure next to its
 * loopback reference measured in the same run:
 * - read_parquet and read_csv (the real httpfs) of a ~100 MB file that a peer serves over the
 *   tailnet (one of our nodes in this process, node:http on its listen(), direct UDP path over
 *   loopback), against the same file from the same kind of node:http server on 127.0.0.1;
 * - Quack query round trips (`FROM remote.query('SELECT 42')`) to a quack_serve on 127.0.0.1,
 *   attached over the tailnet (a DuckDB node publishing it with tailscale_serve_local) and directly.
 * DuckDB runs in child processes (test/sql/duck-child.mjs): the tailnet one with tailscale_up,
 * the reference one never joins, so its reads go straight to loopback with no proxy.
 */
import { execFileSync } from 'node:child_process';
import type { AddressInfo } from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startLocalTailnet } from '../src/tailnet/local.js';
import { Tailnet } from '../src/tailnet/tailnet.js';
import { freePort, tempDir } from '../test/interop/control-peers.js';
import { Cleanup } from '../test/interop/rig/exec.js';
import { checksumSql, type DataFile, makeDataFile } from '../test/sql/datasets.js';
import { DuckProcess, lit } from '../test/sql/duck-process.js';
import { fileServer } from '../test/sql/file-server.js';
import { Report } from './report.js';

const FILE_MB = 100;
const ROUNDS = 3;
const QUACK_QUERIES = 500;
const TOKEN = 'bench-quack-token'; // a benchmark-only Quack token

/** The repository root: this file runs compiled from dist-bench/bench/. */
const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

export async function run(): Promise<Report> {
  const r = new Report('sql');
  const cleanup = new Cleanup();
  try {
    await measure(r, cleanup);
  } finally {
    await cleanup.run();
  }
  return r;
}

/** DuckDB's httpfs and quack extensions, fetched once by the project's script. */
function extensions(): { httpfs: string; quack: string } {
  const out = execFileSync(join(ROOT, 'scripts/fetch-duckdb-extensions.sh'), { encoding: 'utf8' });
  const path = (name: string): string => {
    const line = out.split('\n').find((l) => l.startsWith(`${name}\t`));
    if (!line) throw new Error(`fetch-duckdb-extensions printed no ${name} path`);
    return line.split('\t')[1] as string;
  };
  return { httpfs: path('httpfs'), quack: path('quack') };
}

async function measure(r: Report, cleanup: Cleanup): Promise<void> {
  const ext = extensions();
  const dir = await tempDir(cleanup, 'qs-bench-sql-');
  const files: DataFile[] = [
    await makeDataFile(dir, 'parquet', FILE_MB),
    await makeDataFile(dir, 'csv', FILE_MB),
  ];

  const local = await startLocalTailnet({ stateDir: join(dir, 'control'), stunPort: -1 });
  cleanup.add('local tailnet', () => local.close());
  const port = await freePort();
  const peer = new Tailnet({
    hostname: 'bench-files',
    controlURL: local.controlURL,
    authKey: await local.authKey(),
    stateDir: join(dir, 'peer'),
    derpHttp: true,
    port,
    endpoints: [`127.0.0.1:${port}`], // loopback only: nothing leaves 127.0.0.1
  });
  cleanup.add('close bench-files', () => peer.close());
  await peer.up();
  const peerIp = peer.status().self.addresses.find((a) => a.startsWith('100.')) as string;
  const overTailnet = fileServer(files.map((f) => f.path));
  (await peer.listen(8000)).on('connection', (s) => overTailnet.server.emit('connection', s));
  const onLoopback = fileServer(files.map((f) => f.path));
  await new Promise<void>((res) => onLoopback.server.listen(0, '127.0.0.1', res));
  cleanup.add('loopback server', () => new Promise((res) => onLoopback.server.close(res)));
  cleanup.add('loopback conns', () => onLoopback.server.closeAllConnections());
  const loopPort = (onLoopback.server.address() as AddressInfo).port;

  const start = async (): Promise<DuckProcess> => {
    const d = await DuckProcess.start({
      sqlModule: join(ROOT, 'dist-bench/src/sql/index.js'),
      script: join(ROOT, 'test/sql/duck-child.mjs'),
      // A node that joins advertises only its own UDP port on loopback: nothing leaves 127.0.0.1.
      install: { derpHttp: true, endpoints: ['127.0.0.1:0'] },
    });
    cleanup.add('exit DuckDB', () => d.exit());
    await d.query(`LOAD ${lit(ext.httpfs)}`);
    await d.query(`LOAD ${lit(ext.quack)}`);
    // Every read must cross the network: no answers from DuckDB's in-memory copy of the file.
    await d.query('SET enable_external_file_cache = false');
    return d;
  };
  const ref = await start();
  const tn = await start();
  await tn.query(
    `CALL tailscale_up('bench-duck', authkey => ${lit(await local.authKey())}, ` +
      `control_url => ${lit(local.controlURL)}, state_dir => ${lit(join(dir, 'duck'))}, ephemeral => true)`,
    { label: 'tailscale_up' },
  );
  cleanup.add('tailscale_down', () => tn.query('CALL tailscale_down()'));

  /** One timed read of `f`; fails unless the checksum matches the local file's. */
  const read = async (d: DuckProcess, f: DataFile, base: string): Promise<number> => {
    const { rows, ms } = await d.query(checksumSql(f.format, `${base}/${f.path.split('/').pop()}`));
    if (JSON.stringify(rows[0]) !== JSON.stringify(f.checksum)) {
      throw new Error(`${f.format} over ${base}: checksum ${JSON.stringify(rows[0])} != local`);
    }
    return f.bytes / (ms / 1000) / 1e6;
  };
  const tnBase = `http://${peerIp}:8000`;
  const refBase = `http://127.0.0.1:${loopPort}`;
  // Warm up (and reach the direct path) before timing.
  for (const f of files) {
    await read(ref, f, refBase);
    await read(tn, f, tnBase);
  }
  const path = peer.status().peers.find((p) => p.hostname === 'bench-duck')?.path ?? '?';
  for (const f of files) {
    const refRates: number[] = [];
    const tnRates: number[] = [];
    for (let i = 0; i < ROUNDS; i++) {
      refRates.push(await read(ref, f, refBase));
      tnRates.push(await read(tn, f, tnBase));
    }
    const refName = `reference: read_${f.format} over loopback HTTP`;
    const note = `${(f.bytes / 1e6).toFixed(0)} MB, median of ${ROUNDS}`;
    r.add({ name: refName, value: median(refRates), unit: 'MB/s', note });
    r.add({
      name: `ours: read_${f.format} from a peer over the tailnet`,
      value: median(tnRates),
      unit: 'MB/s',
      ratioTo: refName,
      note: `${note}, ${path}`,
    });
  }

  // Quack: one DuckDB server serving on 127.0.0.1 and publishing it to the tailnet with
  // tailscale_serve_local, attached directly (reference) and over the tailnet by 100.x.
  const server = await start();
  await server.query(
    `CALL tailscale_up('bench-quack', authkey => ${lit(await local.authKey())}, ` +
      `control_url => ${lit(local.controlURL)}, state_dir => ${lit(join(dir, 'quack'))}, ephemeral => true)`,
    { label: 'tailscale_up' },
  );
  cleanup.add('tailscale_down (server)', () => server.query('CALL tailscale_down()'));
  const quackPort = await freePort();
  await server.query(
    `CALL quack_serve('quack:127.0.0.1:${quackPort}', allow_other_hostname => true, token => ${lit(TOKEN)})`,
  );
  cleanup.add('quack_stop', () => server.query(`CALL quack_stop('quack:127.0.0.1:${quackPort}')`));
  await server.query(`CALL tailscale_serve_local(port => 9494, local_port => ${quackPort})`);
  const serverIps = (await server.rows('FROM tailscale_status()'))[0]?.tailnet_ips as string[];
  const serverIp = serverIps.find((a) => a.startsWith('100.')) as string;
  const attach = async (d: DuckProcess, uri: string): Promise<void> => {
    await d.query(`CREATE SECRET (TYPE quack, TOKEN ${lit(TOKEN)}, SCOPE ${lit(uri)})`);
    await d.query(`ATTACH ${lit(uri)} AS remote (TYPE quack, DISABLE_SSL true)`);
  };
  await attach(ref, `quack:127.0.0.1:${quackPort}`);
  await attach(tn, `quack:${serverIp}:9494`);
  const select42 = `FROM remote.query('SELECT 42 AS answer')`;
  const rate = async (d: DuckProcess, n: number): Promise<number> => {
    const { rows, ms } = await d.query(select42, { repeat: n });
    if (rows[0]?.answer !== 42) throw new Error(`Quack answered ${JSON.stringify(rows)}`);
    return n / (ms / 1000);
  };
  // Warm up, and give the two nodes time to leave DERP for the direct path.
  await rate(ref, 50);
  const quackPath = async (): Promise<string> =>
    String((await tn.rows('FROM tailscale_peers()')).find((p) => p.name === 'bench-quack')?.path ?? 'none');
  for (let i = 0; i < 20 && !(await quackPath()).startsWith('direct'); i++) await rate(tn, 50);
  const refQ: number[] = [];
  const tnQ: number[] = [];
  for (let i = 0; i < ROUNDS; i++) {
    refQ.push(await rate(ref, QUACK_QUERIES));
    tnQ.push(await rate(tn, QUACK_QUERIES));
  }
  const refName = 'reference: Quack SELECT 42, loopback';
  const note = `${QUACK_QUERIES} queries, median of ${ROUNDS}`;
  r.add({ name: refName, value: median(refQ), unit: 'queries/s', note });
  r.add({
    name: 'ours: Quack SELECT 42 over the tailnet',
    value: median(tnQ),
    unit: 'queries/s',
    ratioTo: refName,
    note: `${note}, tailscale_serve_local, ${await quackPath()}`,
  });
  await ref.query('DETACH remote');
  await tn.query('DETACH remote');
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] as number;
}
