// The original GUIDE's lakehouse patterns C and D end to end, on Headscale (with derper) and a real
// tailscaled, with DuckDB's real httpfs, quack and ducklake extensions in our DuckDB nodes:
// - Pattern C: a catalog node (lake-catalog) serves, over Quack, the DuckDB database in which a
//   DuckLake catalog keeps its metadata. The Parquet files are served by a real tailscaled host
//   (python3 -m http.server on its loopback, which tailscaled's userspace networking forwards
//   tailnet TCP to). A writer attaches `ducklake:quack:` with the files' directory; two readers
//   attach the same catalog through a forwarder with DATA_PATH the tailscaled host's URL, so every
//   Parquet byte they read comes over the tailnet. The writer inserts while they read.
// - Pattern D: one node (hub) serves Quack tables and its own DuckLake catalog to several clients:
//   one writes into a Quack table while another reads it, and both read the lake (attach_ducklake,
//   quack_query) while the hub writes into it.
// Counts and sums are checked against the writers' own; reads taken during the writes must be
// consistent snapshots (each a prefix of the batches written).
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { buildForNode, extensionPath } from '../sql/build.js';
import { DuckProcess, lit, type Row } from '../sql/duck-process.js';
import { Derper, freePort, Headscale, missingPeers, Tailscaled, tempDir } from './control-peers.js';
import { Cleanup } from './rig/exec.js';
import { pythonHttpServer } from './rig/python-http.js';
import { checkRequirements, skipUnless } from './rig/requirements.js';

const TOKEN = 'lakehouse-token'; // a test-only Quack token
const BASE = 'tailnet.test'; // Headscale's MagicDNS base_domain (control-peers.ts)
const BATCH = 2000; // rows per insert
const BATCHES = 8;

/** The rows of batch `b` (0-based): ids b*BATCH … and amounts id % 97, so each prefix has its own sums. */
const batchSql = (table: string, b: number) =>
  `INSERT INTO ${table} SELECT i AS id, i % 97 AS amount FROM range(${b * BATCH}, ${(b + 1) * BATCH}) t(i)`;

/** count and sum(amount) of the first `k` batches. */
function prefix(k: number): { n: string; total: string } {
  let total = 0;
  for (let i = 0; i < k * BATCH; i++) total += i % 97;
  return { n: String(k * BATCH), total: String(total) };
}

/** Whether a read taken while batches were being written is one of the prefixes. */
function isPrefix(r: Row): boolean {
  const k = Number(r.n) / BATCH;
  return Number.isInteger(k) && k >= 1 && k <= BATCHES && r.total === prefix(k).total;
}

skipUnless([
  ...missingPeers(['headscale', 'tailscaled', 'tailscale', 'derper']),
  ...checkRequirements(['python3']),
])('the GUIDE’s lakehouse patterns over a tailnet', () => {
  const cleanup = new Cleanup();
  let hs: Headscale;
  let key = '';
  let build = '';
  let lakeDir = ''; // the Parquet files of Pattern C, served by the tailscaled host
  let pyPort = 0;

  afterAll(async () => {
    expect((await cleanup.run()).map((e) => e.message)).toEqual([]);
  });

  /** A DuckDB process on the tailnet as `hostname`, with httpfs, quack and ducklake loaded. */
  async function duckNode(hostname: string): Promise<DuckProcess> {
    const duck = await DuckProcess.start({
      sqlModule: join(build, 'sql/index.js'),
      install: { derpHttp: true, endpoints: ['127.0.0.1:0'] },
    });
    cleanup.add(`exit ${hostname}`, () => duck.exit());
    const up = await duck.row(
      `CALL tailscale_up(${lit(hostname)}, control_url => ${lit(hs.url)}, authkey => ${lit(key)}, ` +
        `state_dir => ${lit(await tempDir(cleanup, `qs-lake-${hostname}-`))})`,
    );
    expect(up).toMatchObject({ running: true, hostname });
    for (const e of ['httpfs', 'quack', 'ducklake'] as const)
      await duck.query(`LOAD ${lit(extensionPath(e))}`);
    return duck;
  }

  /** Quack on a loopback port with the token, published to the tailnet on 9494. */
  async function serveQuack(duck: DuckProcess): Promise<number> {
    const port = await freePort();
    await duck.query(
      `CALL quack_serve('quack:127.0.0.1:${port}', allow_other_hostname => true, token => ${lit(TOKEN)})`,
    );
    await duck.query(`CALL tailscale_serve_local(port => 9494, local_port => ${port})`);
    cleanup.add('quack_stop', () =>
      duck.query(`CALL quack_stop('quack:127.0.0.1:${port}')`).then(() => undefined),
    );
    return port;
  }

  /** A forwarder to `host`'s Quack, with the token in a secret for it; returns its loopback URI. */
  async function forward(duck: DuckProcess, host: string): Promise<string> {
    const { quack_uri: uri } = await duck.row(
      `CALL tailscale_quack_forward(host => ${lit(host)}, local_port => 0)`,
    );
    await duck.query(`CREATE SECRET (TYPE quack, TOKEN ${lit(TOKEN)}, SCOPE ${lit(String(uri))})`);
    return String(uri);
  }

  beforeAll(async () => {
    build = buildForNode('sql-lakehouse');
    const derper = await Derper.start(cleanup);
    hs = await Headscale.start(cleanup, { derpPort: derper.port });
    key = await hs.createKey(await hs.createUser('lake'), { reusable: true });
    lakeDir = join(await tempDir(cleanup, 'qs-lake-files-'), 'lake');
    await mkdir(lakeDir);
    pyPort = await pythonHttpServer(cleanup, lakeDir);
    const ts = await Tailscaled.start(cleanup, 'lakefiles');
    await ts.up(hs.url, key, 'lake-files');
  }, 240_000);

  it('Pattern C: readers attach ducklake:quack and read the Parquet files from a tailscaled host while a writer inserts', async () => {
    const catalog = await duckNode('lake-catalog');
    await serveQuack(catalog);
    const writer = await duckNode('lake-writer');
    const readers = [await duckNode('lake-reader-1'), await duckNode('lake-reader-2')];

    const w = await forward(writer, 'lake-catalog');
    await writer.query(`ATTACH ${lit(`ducklake:${w}`)} AS lake (DATA_PATH ${lit(`${lakeDir}/`)})`);
    await writer.query('CREATE TABLE lake.sales (id BIGINT, amount BIGINT)');
    await writer.query(batchSql('lake.sales', 0));

    const dataURL = `http://lake-files.${BASE}:${pyPort}/`;
    for (const r of readers) {
      const uri = await forward(r, 'lake-catalog');
      await r.query(
        `ATTACH ${lit(`ducklake:${uri}`)} AS lake (DATA_PATH ${lit(dataURL)}, OVERRIDE_DATA_PATH true, READ_ONLY)`,
      );
      expect(await r.row('SELECT count(*) AS n, sum(amount) AS total FROM lake.sales')).toEqual(prefix(1));
      // The files it reads are the tailscaled host's, by URL: nothing local stands in for them.
      const files = await r.rows("SELECT data_file FROM ducklake_list_files('lake', 'sales')");
      expect(files.length).toBeGreaterThan(0);
      for (const f of files)
        expect(String(f.data_file)).toMatch(new RegExp(`^${dataURL.replace(/\./g, '\\.')}main/sales/`));
    }

    // The writer inserts batch after batch while both readers keep reading.
    let writing = true;
    const seen: Row[][] = readers.map(() => []);
    const reads = readers.map(async (r, i) => {
      while (writing)
        seen[i]?.push(await r.row('SELECT count(*) AS n, sum(amount) AS total FROM lake.sales'));
    });
    for (let b = 1; b < BATCHES; b++) await writer.query(batchSql('lake.sales', b));
    writing = false;
    await Promise.all(reads);
    const want = prefix(BATCHES);
    expect(await writer.row('SELECT count(*) AS n, sum(amount) AS total FROM lake.sales')).toEqual(want);
    console.log(
      `Pattern C: readers' snapshots while writing: ${seen.map((s) => [...new Set(s.map((x) => x.n))].join(',')).join(' | ')}`,
    );
    for (const [i, r] of readers.entries()) {
      const during = seen[i] ?? [];
      expect(during.length).toBeGreaterThan(0);
      expect(during.filter((x) => !isPrefix(x))).toEqual([]);
      // Never backwards: each reader's snapshots only grow.
      expect(during.map((x) => Number(x.n))).toEqual(during.map((x) => Number(x.n)).sort((a, b) => a - b));
      expect(await r.row('SELECT count(*) AS n, sum(amount) AS total FROM lake.sales')).toEqual(want);
      // Read-only readers cannot write.
      expect(await r.error(batchSql('lake.sales', 99))).toMatch(/read-only|read only/i);
    }
    for (const d of [...readers, writer, catalog]) await d.query('CALL tailscale_down()');
  }, 300_000);

  it('Pattern D: one node serves Quack tables and a DuckLake catalog; clients read and write both at once', async () => {
    const hub = await duckNode('lake-hub');
    const dir = await tempDir(cleanup, 'qs-lake-hub-');
    await hub.query(
      `ATTACH ${lit(`ducklake:${join(dir, 'meta.ducklake')}`)} AS lake (DATA_PATH ${lit(join(dir, 'data'))})`,
    );
    await hub.query('CREATE TABLE lake.events (id BIGINT, amount BIGINT)');
    await hub.query(batchSql('lake.events', 0));
    await hub.query('CREATE TABLE orders (id BIGINT, amount BIGINT)');
    await serveQuack(hub);

    const hubUri = `quack:lake-hub.${BASE}:9494`;
    const orderWriter = await duckNode('order-writer');
    const reader = await duckNode('hub-reader');
    for (const c of [orderWriter, reader]) {
      await c.query(`CREATE SECRET (TYPE quack, TOKEN ${lit(TOKEN)}, SCOPE ${lit(hubUri)})`);
    }
    // Lake first (attach_ducklake reads through quack_query), then the Quack tables (GUIDE, "Use case 4").
    expect(
      await reader.rows(
        `CALL attach_ducklake(${lit(hubUri)}, remote_catalog => 'lake', alias => 'lake', token => ${lit(TOKEN)})`,
      ),
    ).toEqual([{ local_view: 'lake.events', remote_table: 'lake.events', status: 'created' }]);
    expect(await reader.row('SELECT count(*) AS n, sum(amount) AS total FROM lake.events')).toEqual(
      prefix(1),
    );
    for (const c of [orderWriter, reader]) {
      await c.query(`ATTACH ${lit(hubUri)} AS remote (TYPE quack, DISABLE_SSL true)`);
    }

    // Three writers at once: the hub into its lake, a client into the hub's Quack table (one remote
    // statement each, as quack requires); the reader reads both while they write.
    let writing = true;
    const lakeReads: Row[] = [];
    const orderReads: Row[] = [];
    const reading = (async () => {
      while (writing) {
        lakeReads.push(await reader.row('SELECT count(*) AS n, sum(amount) AS total FROM lake.events'));
        orderReads.push(await reader.row('SELECT count(*) AS n, sum(amount) AS total FROM remote.orders'));
      }
    })();
    const hubWrites = (async () => {
      for (let b = 1; b < BATCHES; b++) await hub.query(batchSql('lake.events', b));
    })();
    const clientWrites = (async () => {
      for (let b = 0; b < BATCHES; b++) await orderWriter.query(batchSql('remote.orders', b));
    })();
    await Promise.all([hubWrites, clientWrites]);
    writing = false;
    await reading;

    const want = prefix(BATCHES);
    expect(await hub.row('SELECT count(*) AS n, sum(amount) AS total FROM lake.events')).toEqual(want);
    expect(await hub.row('SELECT count(*) AS n, sum(amount) AS total FROM orders')).toEqual(want);
    for (const c of [reader, orderWriter]) {
      expect(await c.row('SELECT count(*) AS n, sum(amount) AS total FROM remote.orders')).toEqual(want);
    }
    expect(await reader.row('SELECT count(*) AS n, sum(amount) AS total FROM lake.events')).toEqual(want);
    expect(
      await orderWriter.row(
        `FROM quack_query(${lit(hubUri)}, 'SELECT count(*) AS n, sum(amount) AS total FROM lake.events', token => ${lit(TOKEN)}, disable_ssl => true)`,
      ),
    ).toEqual(want);
    console.log(
      `Pattern D: snapshots while writing: lake ${[...new Set(lakeReads.map((x) => x.n))].join(',')}; orders ${[...new Set(orderReads.map((x) => x.n))].join(',')}`,
    );
    expect(lakeReads.length).toBeGreaterThan(0);
    expect([...lakeReads, ...orderReads].filter((x) => Number(x.n) > 0 && !isPrefix(x))).toEqual([]);
    for (const c of [reader, orderWriter]) await c.query('DETACH remote');
    for (const d of [reader, orderWriter, hub]) await d.query('CALL tailscale_down()');
  }, 300_000);
});
