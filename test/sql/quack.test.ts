// End to end on the embedded default (startLocalTailnet), with DuckDB's real httpfs and quack
// extensions in two DuckDB processes (duck-child.mjs), as sql-surface.md's seed scenarios:
// - scenario 1: the server joins, serves Quack on 127.0.0.1 with quack_token(), publishes it with
//   tailscale_serve_local and finds its URIs with quack_discover()/quack_uri(); the client joins,
//   pings it, lists it in tailscale_peers(), and ATTACHes quack:<100.x>:9494 through the node's
//   HTTP proxy (no forwarder): SELECT 42, the sum of a 1,000,000-row table, a wrong token refused.
// - scenario 3: tailscale_quack_forward(host => short name) and ATTACH 'quack:127.0.0.1:<port>'.
// Then tailscale_down, and each process exits by itself.
// Also, in this process: the worker's NodeHost with loopback_proxy, curl through its SOCKS5
// proxy to a tailnet peer.
import { execFile } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NodeHost } from '../../src/sql/host.js';
import { type LocalTailnet, startLocalTailnet } from '../../src/tailnet/local.js';
import { Tailnet } from '../../src/tailnet/tailnet.js';
import { freePort } from '../interop/control-peers.js';
import { buildForNode, extensionPath } from './build.js';
import { DuckProcess, lit } from './duck-process.js';

const tmp = (p: string) => mkdtempSync(join(tmpdir(), p));
const TOKEN = 'quack-e2e-token'; // a test-only Quack token, never a real secret
const ROWS = 1_000_000;
const DOMAIN = 'tailnet.internal'; // startLocalTailnet's MagicDNS suffix

/** Whether something accepts TCP connections on 127.0.0.1:`port`. */
const accepting = (port: number) =>
  new Promise<boolean>((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    s.once('connect', () => resolve(s.destroy() && true));
    s.once('error', () => resolve(false));
  });

describe('Quack over the tailnet from SQL (embedded default, real quack extension)', () => {
  let local: LocalTailnet;
  let build: string;
  let httpfs: string;
  let quack: string;
  const ducks: DuckProcess[] = [];

  beforeAll(async () => {
    httpfs = extensionPath('httpfs');
    quack = extensionPath('quack');
    build = buildForNode('quack');
    local = await startLocalTailnet({ stateDir: tmp('qs-sql-quack-local-') });
  }, 180_000);

  afterAll(async () => {
    for (const d of ducks) await d.exit(1000);
    await local?.close();
  });

  /** A DuckDB process joined to the local tailnet as `hostname`, with httpfs and quack loaded. */
  async function duckNode(hostname: string, env: Record<string, string> = {}): Promise<DuckProcess> {
    const duck = await DuckProcess.start({
      sqlModule: join(build, 'sql/index.js'),
      install: { endpoints: [] },
      env,
    });
    ducks.push(duck);
    const up = await duck.row(
      `CALL tailscale_up(${lit(hostname)}, authkey => ${lit(await local.authKey())}, ` +
        `control_url => ${lit(local.controlURL)}, state_dir => ${lit(tmp(`qs-sql-${hostname}-`))}, ephemeral => true)`,
      'tailscale_up',
    );
    expect(up).toMatchObject({ running: true, hostname });
    // quack needs httpfs loaded first, or it tries to fetch it.
    await duck.query(`LOAD ${lit(httpfs)}`);
    await duck.query(`LOAD ${lit(quack)}`);
    return duck;
  }

  it('scenario 1 (serve_local, discover, ping, peers, ATTACH by 100.x) and scenario 3 (quack_forward), then down and exit', async () => {
    const server = await duckNode('qserver', { QUACK_TAILNET_TOKEN: TOKEN });
    const client = await duckNode('qclient');

    // ---- server
    const loopback = await freePort(); // never 9494 on loopback: other tests run beside this one
    expect(
      await server.row(`CALL quack_serve('quack:127.0.0.1:${loopback}', token => quack_token())`),
    ).toMatchObject({ listen_uri: `quack:127.0.0.1:${loopback}` });
    expect(await server.row(`CALL tailscale_serve_local(port => 9494, local_port => ${loopback})`)).toEqual({
      listen_port: 9494,
      local_port: loopback,
      local_forward: `127.0.0.1:${loopback}`,
    });
    await server.query(
      `CREATE TABLE big AS SELECT i AS id, (i * 7919) % 10007 AS x FROM range(${ROWS}) t(i)`,
    );
    const ips = (await server.row('FROM tailscale_status()')).tailnet_ips as string[];
    const ip = ips.find((a) => a.startsWith('100.')) as string;
    expect(ip).toBeDefined();
    const fqdn = `qserver.${DOMAIN}`;
    expect(await server.rows('FROM quack_discover()')).toEqual([
      { listen_uri: `quack:${fqdn}:9494`, host: fqdn, port: 9494, via: 'magicdns' },
      ...ips.map((a) => ({
        listen_uri: a.includes(':') ? `quack:[${a}]:9494` : `quack:${a}:9494`,
        host: a,
        port: 9494,
        via: 'tailnet_ip',
      })),
    ]);
    expect(await server.row('SELECT quack_uri() AS u')).toEqual({ u: `quack:${fqdn}:9494` });

    // ---- client: reachability and peers
    expect(await client.row(`CALL tailscale_ping(host => 'qserver', port => 9494)`)).toEqual({
      host: 'qserver',
      port: 9494,
      reachable: true,
    });
    expect(await client.error(`CALL tailscale_ping('qserver', port => 9, timeout_ms => 3000)`)).toMatch(
      /tailscale_ping: dial qserver:9 failed: .*ECONNREFUSED/,
    );
    expect(await client.error(`CALL tailscale_ping('no-such-node')`)).toContain('unknown tailnet host');
    const peers = await client.rows('FROM tailscale_peers()');
    const peer = peers.find((p) => p.name === 'qserver');
    expect(peer).toMatchObject({ dns_name: fqdn, tailnet_ips: ips, online: true });
    // endpoints: [] — nodes of this test reach each other over the embedded DERP relay only.
    expect(peer?.path).toBe('derp local');
    expect(Date.parse(`${peer?.last_handshake as string}Z`)).toBeGreaterThan(Date.now() - 120_000);
    expect(Number(peer?.rx_bytes)).toBeGreaterThan(0);
    expect(Number(peer?.tx_bytes)).toBeGreaterThan(0);

    // ---- client: ATTACH by 100.x through the node's HTTP proxy, no forwarder
    let sum = 0;
    for (let i = 0; i < ROWS; i++) sum += (i * 7919) % 10007;
    const expected = { n: String(ROWS), total: String(sum) };
    const uri = `quack:${ip}:9494`;
    await client.query(`CREATE SECRET (TYPE quack, TOKEN ${lit(TOKEN)}, SCOPE ${lit(uri)})`);
    await client.query(`ATTACH ${lit(uri)} AS remote (TYPE quack, DISABLE_SSL true)`);
    expect(await client.row(`FROM remote.query('SELECT 42 AS answer')`)).toEqual({ answer: 42 });
    expect(await client.row('SELECT count(*) AS n, sum(x) AS total FROM remote.big')).toEqual(expected);
    await client.query('DETACH remote');
    await client.query(`CREATE OR REPLACE SECRET (TYPE quack, TOKEN 'wrong-token', SCOPE ${lit(uri)})`);
    expect(await client.error(`ATTACH ${lit(uri)} AS bad (TYPE quack, DISABLE_SSL true)`)).toContain(
      'Authentication failed',
    );

    // ---- scenario 3: a forwarder to the server's short name, on a port the OS picks and a pinned one
    const fwd = await client.row(
      `CALL tailscale_quack_forward(host => 'qserver', port => 9494, local_port => 0)`,
    );
    const fport = fwd.local_port as number;
    expect(fwd).toEqual({
      active: true,
      remote_host: 'qserver',
      remote_port: 9494,
      local_port: fport,
      quack_uri: `quack:127.0.0.1:${fport}`,
    });
    expect(fport).toBeGreaterThan(0);
    const pinned = await freePort();
    expect(
      await client.row(`CALL tailscale_quack_forward('qserver', local_port => ${pinned})`),
    ).toMatchObject({ local_port: pinned, quack_uri: `quack:127.0.0.1:${pinned}` });
    for (const p of [fport, pinned]) {
      const via = `quack:127.0.0.1:${p}`;
      await client.query(`CREATE OR REPLACE SECRET (TYPE quack, TOKEN ${lit(TOKEN)}, SCOPE ${lit(via)})`);
      await client.query(`ATTACH ${lit(via)} AS fwd (TYPE quack)`);
      expect(await client.row(`FROM fwd.query('SELECT 42 AS answer')`)).toEqual({ answer: 42 });
      expect(await client.row('SELECT count(*) AS n, sum(x) AS total FROM fwd.big')).toEqual(expected);
      await client.query('DETACH fwd');
    }

    // ---- down: forwarders closed, processes exit by themselves
    expect(await accepting(fport)).toBe(true);
    expect(await client.row('CALL tailscale_down()')).toEqual({ shutdown_ok: true });
    expect(await accepting(fport)).toBe(false);
    expect(await accepting(pinned)).toBe(false);
    expect(await client.rows('FROM tailscale_peers()')).toEqual([]);
    expect(await client.exit()).toBe(0);
    await server.query(`CALL quack_stop('quack:127.0.0.1:${loopback}')`);
    expect(await server.row('CALL tailscale_down()')).toEqual({ shutdown_ok: true });
    expect(await server.exit()).toBe(0);
  }, 240_000);

  it("loopback_proxy: the worker's SOCKS5 proxy carries curl to a tailnet peer by MagicDNS name", async () => {
    const peer = new Tailnet({
      hostname: 'socks-peer',
      controlURL: local.controlURL,
      authKey: await local.authKey(),
      stateDir: tmp('qs-sql-socks-peer-'),
      endpoints: [],
    });
    await peer.up();
    const body = 'hello from the tailnet';
    const web = http.createServer((_, res) => res.end(body));
    (await peer.listen(8080)).on('connection', (s) => web.emit('connection', s));
    const host = new NodeHost();
    try {
      const reply = await host.up({
        op: 'up',
        hostname: 'socks-user',
        authKey: await local.authKey(),
        controlURL: local.controlURL,
        stateDir: tmp('qs-sql-socks-user-'),
        ephemeral: true,
        httpRoute: false,
        loopbackProxy: true,
        derpHttp: undefined,
        endpoints: [],
      });
      if (!reply.ok) throw new Error(reply.error);
      expect(reply.proxy).toBeUndefined();
      const s = reply.socks as NonNullable<typeof reply.socks>;
      expect(s.username).toBe('tsnet');
      const url = `socks5h://${s.username}:${encodeURIComponent(s.password)}@${s.host}:${s.port}`;
      const curl = (target: string, proxy = url) =>
        new Promise<{ code: number; out: string }>((resolve) =>
          execFile('curl', ['-sS', '--noproxy', '', '-x', proxy, target], (err, out) =>
            resolve({ code: typeof err?.code === 'number' ? err.code : 0, out }),
          ),
        );
      expect(await curl(`http://socks-peer.${DOMAIN}:8080/`)).toEqual({ code: 0, out: body });
      expect(await curl('http://socks-peer:8080/')).toEqual({ code: 0, out: body });
      // Wrong password: refused (curl 97, "proxy handshake error").
      const bad = await curl('http://socks-peer:8080/', url.replace(encodeURIComponent(s.password), 'nope'));
      expect(bad.code).not.toBe(0);
      expect(bad.out).toBe('');
    } finally {
      await host.down();
      await peer.close();
    }
  }, 120_000);
});
