// The seed's two scenarios in a Headscale tailnet with a real tailscaled in it, DuckDB side by side
// with the real httpfs and quack extensions (sql-surface.md "The seed's scenarios"):
// - scenario 2: a DuckDB process joins with tailscale_up(control_url => headscale, authkey => preauth
//   key) and reads files from the tailscaled host: a CSV from `python3 -m http.server` and a ~100 MB
//   Parquet file from a node:http server, both on that host's 127.0.0.1, which tailscaled
//   (userspace networking) forwards tailnet TCP to. By 100.x address, MagicDNS FQDN and short name.
// - scenario 1: a DuckDB server serves Quack on 127.0.0.1 and exposes it with tailscale_serve_local;
//   a DuckDB client attaches it over the tailnet by address and by name.
// tailscaled and our DuckDB nodes advertise only 127.0.0.1 (ours: `127.0.0.1:0`, the node's own
// UDP port), so nothing leaves loopback, and every pair upgrades from the derper to the direct path.
import { mkdir } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { buildForNode, extensionPath } from '../sql/build.js';
import { checksumSql, type DataFile, makeDataFile } from '../sql/datasets.js';
import { DuckProcess, lit, type Row } from '../sql/duck-process.js';
import { fileServer } from '../sql/file-server.js';
import { Derper, freePort, Headscale, missingPeers, Tailscaled, tempDir } from './control-peers.js';
import { Cleanup, waitFor } from './rig/exec.js';
import { pythonHttpServer } from './rig/python-http.js';
import { checkRequirements, skipUnless } from './rig/requirements.js';

const TOKEN = 'tailnet-quack-token-1'; // a test-only Quack token, never a real secret
const BASE = 'tailnet.test'; // Headscale's MagicDNS base_domain (control-peers.ts)

skipUnless([
  ...missingPeers(['headscale', 'tailscaled', 'tailscale', 'derper']),
  ...checkRequirements(['python3']),
])('SQL scenarios on Headscale with a real tailscaled', () => {
  const cleanup = new Cleanup();
  let hs: Headscale;
  let key = '';
  let ts: Tailscaled;
  let tsIp = '';
  let build = '';
  let httpfs = '';
  let quack = '';
  let csv: DataFile;
  let parquet: DataFile;
  let pyPort = 0; // python3 -m http.server, serving csv
  let nodePort = 0; // node:http with ranges, serving parquet
  let client: DuckProcess;

  afterAll(async () => {
    expect((await cleanup.run()).map((e) => e.message)).toEqual([]);
  });

  /** A DuckDB process that has joined the Headscale tailnet as `hostname`. */
  async function duckNode(hostname: string, env: Record<string, string> = {}): Promise<DuckProcess> {
    const duck = await DuckProcess.start({
      sqlModule: join(build, 'sql/index.js'),
      install: { derpHttp: true, endpoints: ['127.0.0.1:0'] },
      env,
    });
    cleanup.add(`exit ${hostname}`, () => duck.exit());
    const up = await duck.row(
      `CALL tailscale_up(${lit(hostname)}, control_url => ${lit(hs.url)}, authkey => ${lit(key)}, ` +
        `state_dir => ${lit(await tempDir(cleanup, `qs-duck-${hostname}-`))})`,
      'tailscale_up',
    );
    expect(up).toMatchObject({ running: true, hostname });
    // quack after httpfs: it would otherwise try to fetch httpfs from the network.
    await duck.query(`LOAD ${lit(httpfs)}`);
    await duck.query(`LOAD ${lit(quack)}`);
    return duck;
  }

  const tsPeer = async (hostname: string) =>
    Object.values((await ts.status()).Peer ?? {}).find((p) => p.HostName === hostname);

  beforeAll(async () => {
    build = buildForNode('sql-headscale');
    httpfs = extensionPath('httpfs');
    quack = extensionPath('quack');
    const dir = await tempDir(cleanup, 'qs-sql-hs-data-');
    const www = join(dir, 'www');
    await mkdir(www);
    csv = await makeDataFile(www, 'csv', 2);
    parquet = await makeDataFile(dir, 'parquet', 100);

    const derper = await Derper.start(cleanup);
    hs = await Headscale.start(cleanup, { derpPort: derper.port });
    key = await hs.createKey(await hs.createUser('duck'), { reusable: true });

    // The tailscaled host's web servers, on its loopback.
    pyPort = await pythonHttpServer(cleanup, www);
    const files = fileServer([parquet.path]);
    await new Promise<void>((r) => files.server.listen(0, '127.0.0.1', r));
    cleanup.add('parquet server', () => new Promise((r) => files.server.close(r)));
    cleanup.add('parquet server conns', () => files.server.closeAllConnections());
    nodePort = (files.server.address() as AddressInfo).port;

    ts = await Tailscaled.start(cleanup, 'files');
    await ts.up(hs.url, key, 'ts-files');
    tsIp = (await ts.status()).Self.TailscaleIPs.find((a) => a.startsWith('100.')) as string;
    client = await duckNode('duck-client');
  }, 240_000);

  it('scenario 2: read_csv from python3 -m http.server behind tailscaled, by 100.x, MagicDNS name and short name', async () => {
    // http.server ignores Range: httpfs gets 200 and the whole file for each buffer it asks for,
    // which is fine for a small CSV (the 100 MB Parquet below comes from a server with ranges).
    const url = (host: string) => `http://${host}:${pyPort}/data.csv`;
    expect(await client.row(checksumSql('csv', url(tsIp)))).toEqual(csv.checksum);
    expect(await client.row(checksumSql('csv', url(`ts-files.${BASE}`)))).toEqual(csv.checksum);
    expect(await client.row(checksumSql('csv', url('ts-files')))).toEqual(csv.checksum);
    expect(Number(csv.checksum.n)).toBeGreaterThan(20_000);
  });

  it('scenario 2: read_parquet of ~100 MB from node:http behind tailscaled, over the direct path', async () => {
    expect(parquet.bytes).toBeGreaterThan(95e6);
    const got = await client.row(checksumSql('parquet', `http://${tsIp}:${nodePort}/data.parquet`));
    expect(got).toEqual(parquet.checksum);
    // tailscaled talks to our DuckDB node directly on its loopback UDP socket, not through DERP.
    expect((await tsPeer('duck-client'))?.CurAddr).toMatch(/^127\.0\.0\.1:\d+$/);
    const byName = await client.row(
      checksumSql('parquet', `http://ts-files.${BASE}:${nodePort}/data.parquet`),
    );
    expect(byName).toEqual(parquet.checksum);
  });

  it('scenario 1: Quack served with tailscale_serve_local, attached over the tailnet by address and by name', async () => {
    const server = await duckNode('duck-server', { QUACK_TAILNET_TOKEN: TOKEN });
    const localPort = await freePort(); // not 9494 on loopback: other tests may run beside this one
    const served = await server.row(
      `CALL quack_serve('quack:127.0.0.1:${localPort}', allow_other_hostname => true, token => quack_token())`,
    );
    expect(served).toMatchObject({ listen_uri: `quack:127.0.0.1:${localPort}` });
    expect(await server.row(`CALL tailscale_serve_local(port => 9494, local_port => ${localPort})`)).toEqual({
      listen_port: 9494,
      local_port: localPort,
      local_forward: `127.0.0.1:${localPort}`,
    });
    await server.query('CREATE TABLE sales AS SELECT i AS id, i * 3 AS amount FROM range(1000) t(i)');
    const serverIp = (await server.row('FROM tailscale_status()')).tailnet_ips as string[];
    const ip = serverIp.find((a) => a.startsWith('100.')) as string;
    const discovered = await server.rows('FROM quack_discover()');
    expect(discovered).toContainEqual({
      listen_uri: `quack:${ip}:9494`,
      host: ip,
      port: 9494,
      via: 'tailnet_ip',
    });
    expect(await server.row('SELECT quack_uri() AS u')).toEqual({ u: `quack:duck-server.${BASE}:9494` });

    const attach = async (host: string): Promise<Row[]> => {
      const uri = `quack:${host}:9494`;
      await client.query(`CREATE OR REPLACE SECRET (TYPE quack, TOKEN ${lit(TOKEN)}, SCOPE ${lit(uri)})`);
      await client.query(`ATTACH ${lit(uri)} AS remote (TYPE quack, DISABLE_SSL true)`);
      try {
        return [
          await client.row(`FROM remote.query('SELECT 42 AS answer')`),
          await client.row('SELECT count(*) AS n, sum(amount) AS total FROM remote.sales'),
        ];
      } finally {
        await client.query('DETACH remote');
      }
    };
    const expected = [{ answer: 42 }, { n: '1000', total: String(3 * ((999 * 1000) / 2)) }];
    expect(await attach(ip)).toEqual(expected);
    expect(await attach(`duck-server.${BASE}`)).toEqual(expected);
    // Two worker-hosted nodes find the direct path between them, as tailscale_peers reports it.
    await waitFor(
      'direct path to duck-server',
      async () => {
        const peer = (await client.rows('FROM tailscale_peers()')).find((p) => p.name === 'duck-server');
        return String(peer?.path).startsWith('direct 127.0.0.1:') ? true : undefined;
      },
      20_000,
      250,
    );

    // The server's tailnet port is the only way in from the client: a wrong token is refused by Quack.
    await client.query(
      `CREATE OR REPLACE SECRET (TYPE quack, TOKEN 'wrong-token', SCOPE 'quack:${ip}:9494')`,
    );
    expect(await client.error(`ATTACH 'quack:${ip}:9494' AS bad (TYPE quack, DISABLE_SSL true)`)).toMatch(
      /token|auth|401|403/i,
    );

    expect(await client.row('CALL tailscale_down()')).toEqual({ shutdown_ok: true });
    expect(await client.exit()).toBe(0);
    expect(await server.row('CALL tailscale_down()')).toEqual({ shutdown_ok: true });
    await server.query(`CALL quack_stop('quack:127.0.0.1:${localPort}')`);
    expect(await server.exit()).toBe(0);
  }, 180_000);
});
