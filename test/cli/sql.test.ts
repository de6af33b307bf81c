// `quackscale sql` as a user runs it: the compiled CLI in its own process, with -c, with piped
// input, in a terminal (through script(1)'s pseudo-terminal), with DuckDB's extensions loaded
// from the fetch script's cache, and joined to the embedded tailnet, after which it must still
// exit by itself.
import { execFile, execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type LocalTailnet, startLocalTailnet } from '../../src/tailnet/local.js';
import { checkRequirements, skipUnless } from '../interop/rig/requirements.js';
import { buildForNode, ROOT } from '../sql/build.js';

const tmp = (p: string) => mkdtempSync(join(tmpdir(), p));
let build: string;

interface Run {
  stdout: string;
  stderr: string;
  code: number | null;
}

/** Runs the CLI (or `command` wrapping it) with `input` on stdin; HOME is a fresh directory. */
function run(
  args: string[],
  opts: { input?: string; env?: NodeJS.ProcessEnv; home?: string } = {},
): Promise<Run> {
  const env = { ...process.env, HOME: opts.home ?? tmp('qs-sql-home-'), ...opts.env };
  return new Promise((done, fail) => {
    const child = execFile(
      process.execPath,
      [join(build, 'cli/main.js'), 'sql', ...args],
      { env, cwd: ROOT, timeout: 90_000 },
      (err, stdout, stderr) => {
        if (err && err.code === undefined) return fail(err);
        done({ stdout, stderr, code: child.exitCode });
      },
    );
    child.stdin?.end(opts.input ?? '');
  });
}

beforeAll(() => {
  build = buildForNode('cli-sql');
}, 180_000);

describe('quackscale sql -c and piped input', () => {
  it('runs several statements and prints each result in the duckbox layout', async () => {
    const r = await run([
      '--no-extensions',
      '-c',
      'CREATE TABLE t AS SELECT 42 AS answer; SELECT * FROM t; SELECT 1 AS one',
    ]);
    expect(r.code).toBe(0);
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe(
      [
        '┌────────┐',
        '│ answer │',
        '│ int32  │',
        '├────────┤',
        '│     42 │',
        '└────────┘',
        '┌───────┐',
        '│  one  │',
        '│ int32 │',
        '├───────┤',
        '│     1 │',
        '└───────┘',
        '',
      ].join('\n'),
    );
  });

  it('stops at the first error: the error on stderr, exit status 1', async () => {
    const r = await run(['--no-extensions', '-c', 'SELECT nope; SELECT 2']);
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/^Binder Error: Referenced column "nope" was not found/);
  });

  it('takes dot commands in -c, and the functions are there before tailscale_up', async () => {
    const r = await run([
      '--no-extensions',
      '-c',
      'CREATE TABLE sales(x INT); CREATE VIEW v AS SELECT 1',
      '-c',
      '.tables',
      '-c',
      '.mode csv',
      '-c',
      'FROM tailscale_status()',
    ]);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe('sales  v\nlibtailscale_linked,running,hostname,tailnet_ips\ntrue,false,NULL,[]\n');
  });

  it('reads statements over several lines from a pipe, goes on after an error, exits 1', async () => {
    const input = [
      'CREATE TABLE a(x INT, s VARCHAR);',
      "INSERT INTO a VALUES (1, 'it''s; fine'),",
      '  (2, NULL);  -- a comment',
      '.mode json',
      'SELECT * FROM a',
      'ORDER BY x;',
      'SELECT broken FROM;',
      '.mode line',
      '/* ; */ SELECT count(*) AS n FROM a;',
    ].join('\n');
    const r = await run(['--no-extensions'], { input });
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('[{"x":1,"s":"it\'s; fine"},\n{"x":2,"s":null}]\nn = 2\n');
    expect(r.stderr).toMatch(/Parser Error/);
  });

  it('rejects bad usage with status 2', async () => {
    const r = await run(['a.db', 'b.db']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/one DATABASE at most/);
  });
});

skipUnless(checkRequirements(['script']))('quackscale sql in a terminal', () => {
  it('prompts D and ·, keeps history in ~/.quackscale_history (0600), leaves on .quit', async () => {
    const home = tmp('qs-sql-tty-');
    const cli = `${process.execPath} ${join(build, 'cli/main.js')} sql --no-extensions`;
    const out = await new Promise<Run>((done, fail) => {
      // script(1) gives the CLI a pseudo-terminal, so it runs its interactive shell.
      const child = execFile(
        'script',
        ['-qec', cli, '/dev/null'],
        { env: { ...process.env, HOME: home }, timeout: 60_000 },
        (err, stdout, stderr) => {
          if (err && err.code === undefined) return fail(err);
          done({ stdout, stderr, code: child.exitCode });
        },
      );
      child.stdin?.end('SELECT 1\n  + 1 AS two;\n.mode line\nSELECT 42 AS answer;\n.quit\n');
    });
    expect(out.code).toBe(0);
    expect(out.stdout).toContain('Enter ".help" for usage hints');
    // readline clears the line (ESC [0J) before each prompt: `D `, then `· ` for the continuation.
    expect(out.stdout).toContain('\x1b[0JD ');
    expect(out.stdout).toContain('\x1b[0J· ');
    expect(out.stdout).toMatch(/│ {5}2 │/);
    expect(out.stdout).toContain('answer = 42');
    const history = join(home, '.quackscale_history');
    expect(statSync(history).mode & 0o777).toBe(0o600);
    expect(readFileSync(history, 'utf8')).toBe(
      'SELECT 1\n  + 1 AS two;\n.mode line\nSELECT 42 AS answer;\n.quit\n',
    );
  }, 90_000);
});

function extensionCache(): { dir?: string; missing: string[] } {
  try {
    const out = execFileSync(join(ROOT, 'scripts/fetch-duckdb-extensions.sh'), { encoding: 'utf8' });
    const httpfs =
      out
        .split('\n')
        .find((l) => l.startsWith('httpfs\t'))
        ?.split('\t')[1] ?? '';
    // <cache>/duckdb_extension_httpfs/extensions/v1.5.5/httpfs.duckdb_extension
    return { dir: join(httpfs, '../../../..'), missing: [] };
  } catch (err) {
    return {
      missing: [`DuckDB extensions (fetch-duckdb-extensions.sh failed: ${String(err).split('\n')[0]})`],
    };
  }
}
const cache = extensionCache();

skipUnless(cache.missing)('quackscale sql with the embedded tailnet and DuckDB extensions', () => {
  let local: LocalTailnet;
  beforeAll(async () => {
    local = await startLocalTailnet({ stateDir: tmp('qs-sql-cli-local-') });
  }, 60_000);
  afterAll(async () => {
    await local?.close();
  });

  it('loads httpfs, quack and ducklake from QUACKSCALE_EXTENSIONS', async () => {
    const r = await run(
      [
        '-c',
        `SELECT list(extension_name ORDER BY extension_name) AS loaded FROM duckdb_extensions() WHERE loaded`,
      ],
      { env: { QUACKSCALE_EXTENSIONS: cache.dir } },
    );
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/ducklake.*httpfs.*quack/);
  });

  it('exits by itself after tailscale_up, with -c and after .quit', async () => {
    const env = { TS_AUTHKEY: await local.authKey() };
    const common = ['--no-extensions', '--control-url', local.controlURL];
    const oneShot = await run(
      [...common, '--state-dir', tmp('qs-sql-cli-a-'), '-c', `CALL tailscale_up('cli-a', ephemeral => true)`],
      { env },
    );
    expect(oneShot.stderr).toBe('');
    expect(oneShot.code).toBe(0);
    expect(oneShot.stdout).toMatch(/│ true\s+│ cli-a\s+│ \[100\./);

    const shell = await run([...common, '--state-dir', tmp('qs-sql-cli-b-')], {
      env,
      input: `CALL tailscale_up('cli-b', ephemeral => true);\n.mode csv\nSELECT running, hostname FROM tailscale_status();\n.quit\n`,
    });
    expect(shell.stderr).toBe('');
    expect(shell.code).toBe(0);
    expect(shell.stdout).toContain('running,hostname\ntrue,cli-b\n');
    // The key came from the environment and appears nowhere.
    expect(shell.stdout + oneShot.stdout).not.toContain(env.TS_AUTHKEY);
  }, 120_000);
});
