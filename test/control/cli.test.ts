import { afterEach, describe, expect, it, vi } from 'vitest';
import { controlCommand } from '../../src/cli/control.js';
import { UsageError } from '../../src/cli/log.js';
import { readAdminFile } from '../../src/control/server/admin.js';
import { open } from '../guard/sockets.js';
import { Rig, runControlCli } from './helpers.js';

const rig = new Rig();
afterEach(async () => {
  vi.restoreAllMocks();
  await rig.cleanup();
});

const run = runControlCli;

describe('quackscale control', () => {
  it('authkey → login → netmap → logout against a server', async () => {
    const stateDir = await rig.dir('qs-ctls-');
    const srv = await rig.server({ stateDir, baseDomain: 'cli.test' });
    const key = await run(['authkey', '--state-dir', stateDir, '--reusable']);
    expect(key.code).toBe(0);
    expect(key.out).toMatch(/^qskey-auth-[0-9a-f]{12}-[0-9a-f]{48}$/);

    const dirA = await rig.dir();
    const login = await run([
      'login',
      '--server',
      srv.url,
      '--authkey',
      key.out,
      '--state-dir',
      dirA,
      '--hostname',
      'cli-a',
    ]);
    expect(login.code).toBe(0);
    expect(login.out).toContain('cli-a.cli.test.');
    expect(login.out).toContain('100.64.0.1/32');

    const dirB = await rig.dir();
    await run([
      'login',
      '--server',
      srv.url,
      '--authkey',
      key.out,
      '--state-dir',
      dirB,
      '--hostname',
      'cli-b',
    ]);
    const nm = await run(['netmap', '--state-dir', dirA, '--json']);
    expect(nm.code).toBe(0);
    const parsed = JSON.parse(nm.out) as {
      self: { name: string };
      peers: { name: string; addresses: string[] }[];
    };
    expect(parsed.self.name).toBe('cli-a.cli.test.');
    expect((parsed as unknown as { magicDNSSuffix: string }).magicDNSSuffix).toBe('cli.test');
    expect(parsed.peers.map((p) => p.name)).toEqual(['cli-b.cli.test.']);
    expect(parsed.peers[0]!.addresses).toEqual(['100.64.0.2/32', 'fd7a:115c:a1e0::2/128']);

    const text = await run(['netmap', '--state-dir', dirA]);
    expect(text.out).toMatch(/^self\tcli-a\.cli\.test\.\t100\.64\.0\.1\/32/m);
    expect(text.out).toMatch(/^peer\tcli-b\.cli\.test\./m);

    const out = await run(['logout', '--state-dir', dirA]);
    expect(out.code).toBe(0);
    const after = await run(['netmap', '--state-dir', dirA]);
    expect(after.code).toBe(1);
    expect(after.err).toMatch(/holds no login/);
  });

  it('reports a rejected key with exit status 1 and a clear message', async () => {
    const srv = await rig.server();
    const r = await run([
      'login',
      '--server',
      srv.url,
      '--authkey',
      'nope',
      '--state-dir',
      await rig.dir(),
      '--hostname',
      'x',
    ]);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/rejected the auth key: invalid auth key/);
  });

  it('serves until SIGINT', async () => {
    const stateDir = await rig.dir('qs-ctls-');
    const pending = run(['serve', '--addr', '127.0.0.1:0', '--state-dir', stateDir]);
    await new Promise((r) => setTimeout(r, 200));
    process.emit('SIGINT');
    const r = await pending;
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/control server listening on http:\/\/127\.0\.0\.1:\d+/);
  });

  it('serve takes the limits: --request-timeout-ms closes a silent connection', async () => {
    const stateDir = await rig.dir('qs-ctls-');
    const pending = run([
      'serve',
      '--addr',
      '127.0.0.1:0',
      '--state-dir',
      stateDir,
      '--request-timeout-ms',
      '300',
      '--max-body-bytes',
      '4096',
    ]);
    await new Promise((r) => setTimeout(r, 300));
    const { url } = await readAdminFile(stateDir);
    const silent = await open(Number(new URL(url!).port));
    expect(await silent.closed(3000)).toBeGreaterThanOrEqual(250);
    process.emit('SIGINT');
    expect((await pending).code).toBe(0);
    await expect(
      controlCommand(['serve', '--addr', '127.0.0.1:0', '--state-dir', stateDir, '--noise-timeout-ms', 'x']),
    ).rejects.toThrow(/--noise-timeout-ms must be a positive integer/);
  });

  it('refuses bad usage', async () => {
    await expect(controlCommand(['bogus'])).rejects.toBeInstanceOf(UsageError);
    await expect(controlCommand(['login', '--server', 'http://x'])).rejects.toThrow(/--state-dir/);
  });
});
