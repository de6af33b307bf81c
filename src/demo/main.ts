/**
 * `npm run demo`: QuackScale end to end on one machine, with no account and nothing installed.
 * The embedded tailnet (our control server and DERP relay) runs in this process; two DuckDB
 * processes join it with `CALL tailscale_up`. The server node creates a table and a CSV, serves
 * Quack on loopback with a token and exposes it, and the CSV, to the tailnet with
 * `tailscale_serve_local`; the client node attaches the server over Quack, queries it and reads
 * the CSV over HTTP by MagicDNS name. Every statement is printed with its node, result and time.
 * Everything is torn down at the end (nodes down, processes ended, temporary state removed).
 */
import { type ChildProcessByStdio, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { createInterface } from 'node:readline';
import type { Readable, Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { fetchDuckdbExtensions } from '../sql/extension-fetch.js';
import type { ExtensionName } from '../sql/extensions.js';
import { type LocalTailnet, startLocalTailnet } from '../tailnet/local.js';
import type { DemoReply, DemoRequest } from './protocol.js';

const out = (s: string) => process.stdout.write(s);
const indent = (text: string) =>
  text
    .trimEnd()
    .split('\n')
    .map((l) => `    ${l}`)
    .join('\n');

/** Thrown when a statement of the demo fails; the demo then tears down and exits 1. */
class DemoStepError extends Error {
  override readonly name = 'DemoStepError';
}

/** One DuckDB node process, driven over its stdin/stdout (protocol.ts). */
class DemoNode {
  private readonly child: ChildProcessByStdio<Writable, Readable, null>;
  private readonly waiting = new Map<number, (r: DemoReply) => void>();
  private nextId = 1;
  readonly exited: Promise<number | null>;

  constructor(
    readonly name: string,
    env: NodeJS.ProcessEnv,
    private readonly secrets: string[],
  ) {
    const script = fileURLToPath(new URL('./node.js', import.meta.url));
    this.child = spawn(process.execPath, [script], { env, stdio: ['pipe', 'pipe', 'inherit'] });
    this.exited = new Promise((resolve) => this.child.on('exit', (code) => resolve(code)));
    createInterface({ input: this.child.stdout }).on('line', (line) => {
      const reply = JSON.parse(line) as DemoReply;
      this.waiting.get(reply.id)?.(reply);
      this.waiting.delete(reply.id);
    });
  }

  request(body: DistributiveOmit<DemoRequest, 'id'>): Promise<DemoReply> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.waiting.set(id, resolve);
      this.exited.then((code) => reject(new DemoStepError(`${this.name}: the process ended (exit ${code})`)));
      this.child.stdin.write(`${JSON.stringify({ id, ...body })}\n`);
    });
  }

  /** Runs `sql`, printing it, its result and how long it took; returns its first rows as JSON. */
  async sql(sql: string): Promise<string[][]> {
    return this.show(sql, await this.request({ kind: 'sql', sql }));
  }

  /** Prints a statement this node ran, with its result or error and its time. */
  show(sql: string, reply: DemoReply): string[][] {
    out(`\n${this.name}> ${sql.replace(/\n\s*/g, ' ')};\n`);
    if (!reply.ok) {
      out(`    Error: ${this.redact(reply.error)}\n`);
      throw new DemoStepError(`${this.name}: ${this.redact(reply.error)}`);
    }
    if (reply.text) out(`${indent(this.redact(reply.text))}\n`);
    out(`    (${reply.ms} ms)\n`);
    return reply.rows;
  }

  /**
   * Asks the process to take its node down and end; kills it if it has not ended 15 s later,
   * so the demo never leaves a process behind. Resolves with a problem to report, if any.
   */
  async close(): Promise<string | undefined> {
    let problem: string | undefined;
    if (this.child.exitCode === null) {
      const reply = await this.request({ kind: 'exit' }).catch((err: unknown) => err);
      if (reply instanceof Error) problem = reply.message;
      else if (!(reply as DemoReply).ok)
        problem = `${this.name}: ${this.redact((reply as { error: string }).error)}`;
      this.child.stdin.end();
    }
    let timer: NodeJS.Timeout | undefined;
    const ended = await Promise.race([
      this.exited.then(() => true),
      new Promise<false>((resolve) => {
        timer = setTimeout(() => resolve(false), 15_000);
      }),
    ]);
    clearTimeout(timer);
    if (!ended) {
      this.child.kill('SIGKILL');
      await this.exited;
      problem = `${this.name}: the process did not end by itself and was killed`;
    }
    return problem;
  }

  /** Tokens and keys never reach the output, even inside an error text or a result. */
  private redact(text: string): string {
    return this.secrets.reduce((t, s) => t.split(s).join('********'), text);
  }
}

type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;

/** A free loopback TCP port (bound, read and released), for quack_serve to listen on. */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

const lit = (s: string) => `'${s.replace(/'/g, "''")}'`;

/** The SQL of both nodes, in order. */
async function script(
  server: DemoNode,
  client: DemoNode,
  ext: Map<ExtensionName, string>,
  controlURL: string,
  work: string,
) {
  const show = (p: string) => (p.startsWith(process.cwd()) ? relative(process.cwd(), p) : p);
  const up = (name: string) =>
    `CALL tailscale_up(hostname => '${name}', control_url => '${controlURL}', state_dir => ${lit(join(work, name))}, ephemeral => true)`;
  // Both join at once; their results are printed one after the other.
  const [s, c] = await Promise.all([
    server.request({ kind: 'sql', sql: up('server') }),
    client.request({ kind: 'sql', sql: up('client') }),
  ]);
  server.show(up('server'), s);
  client.show(up('client'), c);
  for (const node of [server, client]) {
    await node.sql(`LOAD ${lit(show(ext.get('httpfs') as string))}`);
    await node.sql(`LOAD ${lit(show(ext.get('quack') as string))}`);
  }

  await server.sql(
    `CREATE TABLE sales AS SELECT i AS id, ['north', 'south', 'east', 'west'][i % 4 + 1] AS region,
     round(10 + (i * 7919) % 9000 / 100, 2)::DECIMAL(10,2) AS amount FROM range(1000) t(i)`,
  );
  const csvDir = join(work, 'files');
  mkdirSync(csvDir);
  await server.sql(`COPY sales TO ${lit(join(csvDir, 'sales.csv'))} (HEADER)`);
  const files = await server.request({ kind: 'serve-files', dir: csvDir });
  if (!files.ok || files.port === undefined) throw new DemoStepError('server: the file server did not start');
  out(`\nserver: serving ${show(csvDir)} with node:http on 127.0.0.1:${files.port}\n`);
  await server.sql(`CALL tailscale_serve_local(port => 8000, local_port => ${files.port})`);
  const quackPort = await freePort();
  await server.sql(
    `SELECT listen_uri, listen_url FROM quack_serve('quack:127.0.0.1:${quackPort}', allow_other_hostname => true, token => quack_token())`,
  );
  await server.sql(`CALL tailscale_serve_local(port => 9494, local_port => ${quackPort})`);
  const endpoints = await server.sql('FROM quack_discover()');
  const viaIp = endpoints
    .map((r) => JSON.parse(r[0] as string) as string)
    .find((u) => /^quack:100\./.test(u));
  if (!viaIp) throw new DemoStepError('server: quack_discover() listed no 100.x address');

  await client.sql('SELECT name, tailnet_ips, online FROM tailscale_peers()');
  await client.sql(`CREATE SECRET (TYPE quack, TOKEN quack_token(), SCOPE ${lit(viaIp)})`);
  await client.sql(`ATTACH ${lit(viaIp)} AS remote (TYPE quack, DISABLE_SSL true)`);
  await client.sql(`FROM remote.query('SELECT 42 AS answer')`);
  await client.sql(
    `FROM remote.query('SELECT region, count(*) AS orders, sum(amount) AS revenue FROM sales GROUP BY region ORDER BY region')`,
  );
  await client.sql(
    `SELECT count(*) AS csv_rows, sum(amount) AS revenue FROM read_csv('http://server:8000/sales.csv')`,
  );
  await client.sql('DETACH remote');
  await client.sql('CALL tailscale_down()');
  await server.sql(`CALL quack_stop('quack:127.0.0.1:${quackPort}')`);
  await server.sql('CALL tailscale_down()');
}

async function main(): Promise<number> {
  const started = performance.now();
  const secs = () => ((performance.now() - started) / 1000).toFixed(1);
  out('quackscale demo: two DuckDB processes on a tailnet that runs in this one (no account needed)\n\n');
  const ext = await fetchDuckdbExtensions({
    onDownload: (wheel) => out(`fetching ${wheel} from PyPI (first run only)…\n`),
  });
  out(
    `DuckDB extensions: ${[...ext.keys()].join(', ')} (DuckDB's signed builds from PyPI wheels, loaded by path)\n`,
  );

  const work = mkdtempSync(join(tmpdir(), 'quackscale-demo-'));
  let local: LocalTailnet | undefined;
  let failed = false;
  const nodes: DemoNode[] = [];
  try {
    local = await startLocalTailnet({ stateDir: join(work, 'control') });
    out(`embedded tailnet: control server ${local.controlURL}, DERP relay ${local.derpURL}\n`);
    out(`temporary state in ${work} (removed at exit)\n`);
    const authKey = await local.authKey({ reusable: true, ephemeral: true });
    const token = randomBytes(18).toString('base64url');
    const env = { ...process.env, TS_AUTHKEY: authKey, QUACK_TAILNET_TOKEN: token };
    const server = new DemoNode('server', env, [authKey, token]);
    const client = new DemoNode('client', env, [authKey, token]);
    nodes.push(server, client);
    await script(server, client, ext, local.controlURL, work);
    out(
      `\ndone in ${secs()} s: Quack and HTTP between two DuckDB processes over WireGuard, via our DERP relay\n`,
    );
  } catch (err) {
    process.stderr.write(`\ndemo failed: ${err instanceof Error ? err.message : String(err)}\n`);
    failed = true;
  } finally {
    for (const problem of await Promise.all(nodes.map((n) => n.close()))) {
      if (!problem) continue;
      process.stderr.write(`teardown: ${problem}\n`);
      failed = true;
    }
    await local?.close();
    rmSync(work, { recursive: true, force: true });
    if (existsSync(work)) process.stderr.write(`warning: could not remove ${work}\n`);
  }
  return failed ? 1 : 0;
}

process.exitCode = await main();
