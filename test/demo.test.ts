// `npm run demo` end to end: the compiled demo (as scripts/demo.mjs runs it) starts the embedded
// tailnet, two DuckDB processes join it, the client reads the server over Quack and its CSV
// over HTTP, and everything ends by itself: exit status 0, temporary state gone.
import { execFile, execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, expect, it } from 'vitest';
import { skipUnless } from './interop/rig/requirements.js';
import { buildForNode, ROOT } from './sql/build.js';

/** The demo needs DuckDB's extensions from PyPI (fetched once into .cache/); without them it cannot run. */
function extensionsMissing(): string[] {
  try {
    execFileSync(join(ROOT, 'scripts/fetch-duckdb-extensions.sh'), { stdio: ['ignore', 'ignore', 'pipe'] });
    return [];
  } catch (err) {
    const stderr = (err as { stderr?: Buffer }).stderr?.toString().trim() ?? String(err);
    return [`DuckDB extensions (scripts/fetch-duckdb-extensions.sh failed: ${stderr.split('\n').pop()})`];
  }
}

skipUnless(extensionsMissing())('npm run demo', () => {
  let build: string;
  beforeAll(() => {
    build = buildForNode('demo');
  }, 180_000);

  it('runs both nodes, prints 42 and the CSV row count, and exits cleanly', async () => {
    const { stdout, stderr, code } = await new Promise<{
      stdout: string;
      stderr: string;
      code: number | null;
    }>((done, fail) => {
      const child = execFile(
        process.execPath,
        [join(build, 'demo/main.js')],
        { cwd: ROOT, timeout: 150_000 },
        (err, stdout, stderr) => {
          if (err && err.code === undefined) return fail(err);
          done({ stdout, stderr, code: child.exitCode });
        },
      );
    });
    if (code !== 0) process.stderr.write(`${stdout}\n${stderr}`);
    expect(code).toBe(0);
    expect(stderr).toBe('');
    const lines = stdout.split('\n');
    const after = (statement: string) => lines.slice(lines.findIndex((l) => l.startsWith(statement)));

    expect(lines.filter((l) => /^(server|client)> CALL tailscale_up\(/.test(l))).toHaveLength(2);
    expect(after("client> FROM remote.query('SELECT 42 AS answer');").slice(1, 7).join('\n')).toMatch(
      /│\s+42 │/,
    );

    // The same 1000 rows reach the client twice: aggregated on the server over Quack, and as a
    // CSV over HTTP. The CSV's total must equal the sum of the per-region totals.
    const regions = after("client> FROM remote.query('SELECT region").flatMap((l) => {
      const m = /│ (north|south|east|west)\s+│\s+(\d+) │\s+([\d.]+) │/.exec(l);
      return m ? [{ orders: Number(m[2]), revenue: Number(m[3]) }] : [];
    });
    expect(regions).toHaveLength(4);
    expect(regions.reduce((a, r) => a + r.orders, 0)).toBe(1000);
    const csv = after('client> SELECT count(*) AS csv_rows')
      .map((l) => /│\s+(\d+) │\s+([\d.]+) │/.exec(l))
      .find((m) => m !== null);
    expect(csv?.[1]).toBe('1000');
    expect(Number(csv?.[2])).toBeCloseTo(
      regions.reduce((a, r) => a + r.revenue, 0),
      6,
    );

    expect(after('client> CALL tailscale_down();').slice(1, 7).join('\n')).toMatch(/│ true\s+│/);
    expect(stdout).toMatch(/\ndone in [\d.]+ s/);
    const work = /temporary state in (\S+)/.exec(stdout)?.[1];
    expect(work).toBeDefined();
    expect(existsSync(work as string)).toBe(false);
  }, 180_000);
});
