// Scenario 2 of sql-surface.md on the embedded default: a DuckDB process joins with
// tailscale_up and reads, through the real httpfs extension, a ~100 MB Parquet file (and a JSON
// file) that a peer — one of our nodes, node:http on its listen() — serves over the tailnet.
// The peer advertises a loopback endpoint, so after disco the bytes take the direct UDP path.
// Each remote read must give the same count and column sums as the same query on the local file.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type LocalTailnet, startLocalTailnet } from '../../src/tailnet/local.js';
import { Tailnet } from '../../src/tailnet/tailnet.js';
import { freePort } from '../interop/control-peers.js';
import { buildForNode, extensionPath } from './build.js';
import { checksumSql, type DataFile, makeDataFile } from './datasets.js';
import { DuckProcess, lit } from './duck-process.js';
import { type FileServerStats, fileServer } from './file-server.js';

const dirs: string[] = [];
/** A temp dir, removed after the suite (the data files are over 100 MB). */
const tmp = (p: string): string => {
  const d = mkdtempSync(join(tmpdir(), p));
  dirs.push(d);
  return d;
};

describe('scenario 2: read_parquet / read_json from a peer over the tailnet (embedded default)', () => {
  let local: LocalTailnet;
  let seller: Tailnet;
  let duck: DuckProcess | undefined;
  let parquet: DataFile;
  let json: DataFile;
  let served: FileServerStats;
  let build = '';
  let httpfs = '';

  beforeAll(async () => {
    httpfs = extensionPath('httpfs');
    build = buildForNode('read-parquet');
    const dir = tmp('qs-sql-data-');
    parquet = await makeDataFile(dir, 'parquet', 100);
    json = await makeDataFile(dir, 'json', 10);
    local = await startLocalTailnet({ stateDir: tmp('qs-sql-local-') });
    const port = await freePort();
    seller = new Tailnet({
      hostname: 'seller',
      controlURL: local.controlURL,
      authKey: await local.authKey(),
      stateDir: tmp('qs-sql-seller-'),
      port,
      // Loopback only: the buyer finds the direct path here, and nothing leaves 127.0.0.1.
      endpoints: [`127.0.0.1:${port}`],
    });
    await seller.up();
    const files = fileServer([parquet.path, json.path]);
    served = files.stats;
    (await seller.listen(8000)).on('connection', (s) => files.server.emit('connection', s));
  }, 180_000);

  afterAll(async () => {
    await duck?.exit();
    await seller?.close();
    await local?.close();
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  }, 60_000);

  it('matches the local file: row count and every column summed, by MagicDNS name and by 100.x address', async () => {
    expect(parquet.bytes).toBeGreaterThan(95e6);
    duck = await DuckProcess.start({
      sqlModule: join(build, 'sql/index.js'),
      install: { endpoints: [] },
    });
    const up = await duck.row(
      `CALL tailscale_up('buyer', authkey => ${lit(await local.authKey())}, control_url => ${lit(local.controlURL)}, ` +
        `state_dir => ${lit(tmp('qs-sql-buyer-'))}, ephemeral => true)`,
      'tailscale_up',
    );
    expect(up.running).toBe(true);
    await duck.query(`LOAD ${lit(httpfs)}`);

    const byName = await duck.row(checksumSql('parquet', 'http://seller.tailnet.internal:8000/data.parquet'));
    expect(byName).toEqual(parquet.checksum);
    expect(Number(byName.n)).toBeGreaterThan(2_000_000);
    // httpfs read it in ranges (HEAD, then footer and row groups), and all of it came across.
    expect(served.head).toBeGreaterThanOrEqual(1);
    expect(served.ranged).toBeGreaterThan(3);
    expect(served.bytes).toBeGreaterThanOrEqual(parquet.bytes * 0.9);
    const path = seller.status().peers.find((p) => p.hostname === 'buyer')?.path;
    expect(path).toMatch(/^direct 127\.0\.0\.1:\d+$/);

    const sellerIp = seller.status().self.addresses.find((a) => a.startsWith('100.')) as string;
    expect(await duck.row(checksumSql('json', `http://${sellerIp}:8000/data.json`))).toEqual(json.checksum);

    // A missing file is an SQL error naming the URL, not a hang or an empty result.
    const err = await duck.error(`SELECT count(*) FROM read_parquet('http://seller:8000/none.parquet')`);
    expect(err).toMatch(/404|not found/i);

    expect(await duck.row('CALL tailscale_down()')).toEqual({ shutdown_ok: true });
    expect(await duck.exit()).toBe(0);
  }, 240_000);
});
