// `quackscale control approve | reject | pending` against a running embedded server, through its admin API.
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { UsageError } from '../../src/cli/log.js';
import { ProtocolError } from '../../src/control/errors.js';
import type { ControlServer } from '../../src/control/server/server.js';
import { Rig, runControlCli } from './helpers.js';

const rig = new Rig();
afterEach(async () => {
  vi.restoreAllMocks();
  await rig.cleanup();
});

const run = runControlCli;

async function waitingClient(srv: ControlServer, hostname: string) {
  const urls: string[] = [];
  const c = await rig.client({ serverURL: srv.url, hostname, onAuthURL: (u) => urls.push(u) });
  const login = c.login();
  login.catch(() => {}); // awaited by the test
  for (let i = 0; urls.length === 0; i++) {
    if (i > 500) throw new Error('no AuthURL');
    await new Promise((r) => setTimeout(r, 20));
  }
  return { c, login, url: urls[0]! };
}

describe('quackscale control approve / reject / pending', () => {
  it('lists a waiting login and approves it by URL for a user, with tags', async () => {
    const stateDir = await rig.dir('qs-ctls-');
    const srv = await rig.server({ stateDir, baseDomain: 'cli.test' });
    const { c, login, url } = await waitingClient(srv, 'cli-i');

    const listed = await run(['pending', '--state-dir', stateDir]);
    expect(listed.code).toBe(0);
    expect(listed.out).toMatch(new RegExp(`^${url}\\tpending\\tcli-i\\texpires=`));

    const ok = await run([
      'approve',
      '--state-dir',
      stateDir,
      '--user',
      'carol',
      '--tags',
      'tag:db,tag:web',
      url,
    ]);
    expect(ok.err).toBe('');
    expect(ok.code).toBe(0);
    expect(ok.out).toBe('approved cli-i\t100.64.0.1,fd7a:115c:a1e0::1\tuser=carol tags=tag:db,tag:web');
    expect((await login).login?.LoginName).toBe('carol');
    c.start();
    expect((await c.waitForNetmap(undefined, 5_000)).self.name).toBe('cli-i.cli.test.');
  });

  it('approves by bare id, rejects by URL, and reports what the server refused', async () => {
    const stateDir = await rig.dir('qs-ctls-');
    const srv = await rig.server({ stateDir });
    const one = await waitingClient(srv, 'by-id');
    const id = one.url.split('/').pop()!;
    expect((await run(['approve', '--state-dir', stateDir, id])).code).toBe(0);
    await one.login;

    const two = await waitingClient(srv, 'refused');
    const rej = await run(['reject', '--state-dir', stateDir, two.url]);
    expect([rej.code, rej.out]).toEqual([0, 'rejected']);
    const err = await two.login.catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ProtocolError);
    expect((err as Error).message).toMatch(/rejected by an admin/);

    const again = await run(['approve', '--state-dir', stateDir, two.url]);
    expect(again.code).toBe(1);
    expect(again.err).toMatch(/HTTP 409: this login was already rejected/);
    const unknown = await run(['approve', '--state-dir', stateDir, `${srv.url}/register/${'B'.repeat(32)}`]);
    expect(unknown.code).toBe(1);
    expect(unknown.err).toMatch(/HTTP 404: no pending login BBBBBBBB…/);
    const badTag = await run(['approve', '--state-dir', stateDir, '--tags', 'db', `${'C'.repeat(32)}`]);
    expect(badTag.err).toMatch(/HTTP 400: tag 'db' is not of the form tag:name/);
  });

  it('fails clearly with a wrong token, a state dir that is not a server’s, a stopped server, or a bad argument', async () => {
    const stateDir = await rig.dir('qs-ctls-');
    const srv = await rig.server({ stateDir, followupWaitMs: 100 });
    const { url } = await waitingClient(srv, 'guarded');
    const adminFile = srv.adminFile;
    const url0 = (JSON.parse(await readFile(adminFile, 'utf8')) as { url: string }).url;
    await writeFile(adminFile, JSON.stringify({ token: 'x'.repeat(43), url: url0 }));
    const wrong = await run(['approve', '--state-dir', stateDir, url]);
    expect(wrong.code).toBe(1);
    expect(wrong.err).toMatch(/HTTP 401: admin token missing or wrong/);
    expect(wrong.err).not.toContain('x'.repeat(43));
    expect(srv.pendingLogins().map((p) => p.state)).toEqual(['pending']);

    const elsewhere = await rig.dir();
    const noFile = await run(['approve', '--state-dir', elsewhere, url]);
    expect(noFile.code).toBe(1);
    expect(noFile.err).toContain(join(elsewhere, 'admin.json'));

    await expect(run(['approve', '--state-dir', stateDir, 'not-a-url'])).rejects.toBeInstanceOf(UsageError);
    await expect(run(['approve', '--state-dir', stateDir])).rejects.toBeInstanceOf(UsageError);

    await srv.close();
    rig.servers.splice(rig.servers.indexOf(srv), 1);
    const stopped = await run(['pending', '--state-dir', stateDir]);
    expect(stopped.code).toBe(1);
    expect(stopped.err).toMatch(
      /cannot reach the control server at http:\/\/127\.0\.0\.1:\d+ \(is `quackscale control serve` running\?\)/,
    );
  });
});
