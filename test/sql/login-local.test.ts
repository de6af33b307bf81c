// Scenario 5 on the embedded default: tailscale_status and tailscale_login_status before and
// after, and tailscale_login through our own control server's interactive flow — the node gets
// an AuthURL, the admin approves it (LocalTailnet.approve, as `quackscale control approve`
// does), and the node comes up. DuckDB runs in a child process: the control server lives in this
// one, and the SQL thread blocks while the node works.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type LocalTailnet, startLocalTailnet } from '../../src/tailnet/local.js';
import { buildForNode } from './build.js';
import { DuckProcess, lit, type Row } from './duck-process.js';

const tmp = (p: string) => mkdtempSync(join(tmpdir(), p));

describe('tailscale_login with the embedded control server', () => {
  let local: LocalTailnet;
  let duck: DuckProcess;

  beforeAll(async () => {
    const build = buildForNode('login-local');
    local = await startLocalTailnet({ stateDir: tmp('qs-sql-login-local-') });
    duck = await DuckProcess.start({
      sqlModule: join(build, 'sql/index.js'),
      install: { endpoints: [], loginWaitMs: 10_000 },
      // An interactive login is one without any key.
      env: { TS_AUTHKEY: '' },
    });
  }, 180_000);

  afterAll(async () => {
    await duck?.exit(1000);
    await local?.close();
  });

  it('status before, needs_login with our AuthURL, approved by the admin, up, down, and the process exits', async () => {
    const idle = {
      status: 'idle',
      login_url: null,
      message: null,
      running: false,
      hostname: null,
      tailnet_ips: [],
    };
    expect(await duck.row('FROM tailscale_login_status()')).toEqual(idle);
    expect(await duck.row('FROM tailscale_status()')).toEqual({
      libtailscale_linked: true,
      running: false,
      hostname: null,
      tailnet_ips: [],
    });

    const login = await duck.row(
      `CALL tailscale_login('sql-interactive', control_url => ${lit(local.controlURL)}, ` +
        `state_dir => ${lit(tmp('qs-sql-login-node-'))})`,
      'tailscale_login',
    );
    expect(login.status).toBe('needs_login');
    const url = String(login.login_url);
    expect(url.startsWith(`${local.controlURL}/register/`)).toBe(true);
    expect(await duck.row('FROM tailscale_login_status()')).toMatchObject({
      status: 'needs_login',
      login_url: url,
      running: false,
    });
    expect(await duck.error('SELECT quack_uri()')).toContain('Tailscale is not up');

    await local.approve(url, { user: 'erin' });
    let up: Row | undefined;
    for (const deadline = Date.now() + 30_000; Date.now() < deadline; ) {
      const s = await duck.row('FROM tailscale_login_status()');
      if (s.status === 'up') {
        up = s;
        break;
      }
      await new Promise((r) => setTimeout(r, 200));
    }
    expect(up).toMatchObject({ login_url: null, running: true, hostname: 'sql-interactive' });
    const ips = up?.tailnet_ips as string[];
    expect(ips[0]).toMatch(/^100\./);
    expect(await duck.row('FROM tailscale_status()')).toEqual({
      libtailscale_linked: true,
      running: true,
      hostname: 'sql-interactive',
      tailnet_ips: ips,
    });
    expect(await duck.row('SELECT quack_uri() AS u')).toEqual({
      u: 'quack:sql-interactive.tailnet.internal:9494',
    });

    expect(await duck.rows('CALL tailscale_down()')).toEqual([{ shutdown_ok: true }]);
    expect(await duck.row('FROM tailscale_login_status()')).toEqual(idle);
    expect(await duck.exit()).toBe(0);
  }, 120_000);
});
