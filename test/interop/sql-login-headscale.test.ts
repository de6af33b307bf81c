// tailscale_login / tailscale_login_status against a real Headscale: a node with no auth key
// gets an AuthURL; an admin approves it with `headscale auth register`; login_status turns up.
// The SQL runs in this process (the node is in the SQL layer's worker; Headscale and derper are
// other processes, so nothing waits on the event loop the SQL calls block).
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { type DuckDBConnection, DuckDBInstance } from '@duckdb/node-api';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { installQuackscale } from '../../src/sql/index.js';
import { buildForNode } from '../sql/build.js';
import { Derper, Headscale, missingPeers, tempDir } from './control-peers.js';
import { Cleanup, waitFor } from './rig/exec.js';
import { skipUnless } from './rig/requirements.js';

const lit = (s: string) => `'${s.replace(/'/g, "''")}'`;

skipUnless(missingPeers(['headscale', 'derper']))('tailscale_login on Headscale', () => {
  const cleanup = new Cleanup();
  let hs: Headscale;
  let instance: DuckDBInstance;
  let c: DuckDBConnection;
  const savedKey = process.env.TS_AUTHKEY;

  const rows = async (sql: string) => (await c.runAndReadAll(sql)).getRowObjectsJson();
  const row = async (sql: string) => (await rows(sql))[0] as Record<string, unknown>;

  beforeAll(async () => {
    delete process.env.TS_AUTHKEY; // an interactive login is one without any key
    const derper = await Derper.start(cleanup);
    hs = await Headscale.start(cleanup, { derpPort: derper.port });
    await hs.createUser('alice');
    const workerUrl = pathToFileURL(join(buildForNode('sql-login'), 'sql/worker.js'));
    instance = await DuckDBInstance.create(':memory:');
    c = await instance.connect();
    await installQuackscale(c, { instance, workerUrl, derpHttp: true, endpoints: [], loginWaitMs: 10_000 });
  }, 120_000);

  afterAll(async () => {
    await c?.run('CALL tailscale_down()');
    instance?.closeSync();
    if (savedKey !== undefined) process.env.TS_AUTHKEY = savedKey;
    await cleanup.run();
  });

  it('tailscale_up without a key fails at once and points to tailscale_login', async () => {
    const dir = await tempDir(cleanup, 'qs-sql-login-up-');
    const err = await c
      .run(`CALL tailscale_up('sql-nokey', control_url => ${lit(hs.url)}, state_dir => ${lit(dir)})`)
      .catch((e: Error) => e);
    expect((err as Error).message).toContain(
      'tailscale_up: this node needs an interactive login: use tailscale_login()',
    );
    expect(await row('FROM tailscale_login_status()')).toMatchObject({ status: 'idle', running: false });
  });

  it('needs_login with the AuthURL, then up once approved, with HTTP routing installed by the login', async () => {
    const dir = await tempDir(cleanup, 'qs-sql-login-');
    const login = await row(
      `CALL tailscale_login('sql-login', control_url => ${lit(hs.url)}, state_dir => ${lit(dir)})`,
    );
    expect(login).toMatchObject({
      status: 'needs_login',
      message: 'Open login_url in a browser to authorize this node',
    });
    const url = String(login.login_url);
    expect(url).toMatch(new RegExp(`^${hs.url}/register/`));
    expect(await row('FROM tailscale_login_status()')).toEqual({
      status: 'needs_login',
      login_url: url,
      message: 'Open login_url in a browser to authorize this node',
      running: false,
      hostname: 'sql-login',
      tailnet_ips: [],
    });
    // The router is in place from the login on (inert for tailnet hosts until the node is up).
    expect((await row(`SELECT current_setting('http_proxy') AS p`)).p).toMatch(/^127\.0\.0\.1:\d+$/);
    await expect(c.run('SELECT quack_uri()')).rejects.toThrow('Tailscale is not up');

    await hs.cli(['auth', 'register', '--auth-id', url.split('/').pop() as string, '--user', 'alice']);
    const up = await waitFor(
      'login_status up',
      async () => {
        const s = await row('FROM tailscale_login_status()');
        return s.status === 'up' ? s : undefined;
      },
      30_000,
      200,
    );
    expect(up).toMatchObject({ login_url: null, message: 'Connected', running: true, hostname: 'sql-login' });
    expect((up.tailnet_ips as string[])[0]).toMatch(/^100\./);
    expect(await row('SELECT quack_uri() AS u')).toEqual({ u: 'quack:sql-login.tailnet.test:9494' });
    expect(await row('CALL tailscale_login()')).toEqual({
      status: 'up',
      login_url: null,
      message: 'Connected',
    });
    expect((await hs.nodes()).some((n) => n.name === 'sql-login')).toBe(true);

    expect(await rows('CALL tailscale_down()')).toEqual([{ shutdown_ok: true }]);
    expect(await row('FROM tailscale_login_status()')).toMatchObject({ status: 'idle', running: false });
    expect((await row(`SELECT current_setting('http_proxy') AS p`)).p).toBe('');
  });
});
