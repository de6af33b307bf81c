// End to end: a DuckDB process joins the embedded local tailnet with CALL tailscale_up, reads
// a CSV that a tailnet peer serves over node:http with httpfs's read_csv (through the node's
// loopback proxy, set in DuckDB's http_proxy settings), leaves with tailscale_down and exits.
import { execFile } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type LocalTailnet, startLocalTailnet } from '../../src/tailnet/local.js';
import { Tailnet } from '../../src/tailnet/tailnet.js';
import { buildForNode, extensionPath, ROOT } from './build.js';

const tmp = (p: string) => mkdtempSync(join(tmpdir(), p));

describe('SQL over the tailnet (embedded default)', () => {
  let local: LocalTailnet;
  let seller: Tailnet;
  let httpfs: string;
  let build: string;
  const xs = Array.from({ length: 5000 }, (_, i) => (i * 7919) % 10007);
  const csv = `id,x\n${xs.map((x, i) => `${i},${x}`).join('\n')}\n`;

  beforeAll(async () => {
    httpfs = extensionPath('httpfs');
    build = buildForNode('read-csv');
    local = await startLocalTailnet({ stateDir: tmp('qs-sql-local-') });
    seller = new Tailnet({
      hostname: 'seller',
      controlURL: local.controlURL,
      authKey: await local.authKey(),
      stateDir: tmp('qs-sql-seller-'),
      endpoints: [],
    });
    await seller.up();
    const files = http.createServer((req, res) => {
      if (req.url !== '/sales.csv') return void res.writeHead(404).end();
      res.writeHead(200, { 'content-type': 'text/csv', 'content-length': Buffer.byteLength(csv) });
      res.end(req.method === 'HEAD' ? undefined : csv);
    });
    const srv = await seller.listen(8000);
    srv.on('connection', (s) => files.emit('connection', s));
  }, 120_000);

  afterAll(async () => {
    await seller?.close();
    await local?.close();
  });

  it('tailscale_up, read_csv from a peer by MagicDNS name, tailscale_down, up without routing, and the process exits', async () => {
    const env = {
      ...process.env,
      QS_SQL_MODULE: join(build, 'sql/index.js'),
      QS_HOSTNAME: 'buyer',
      QS_AUTHKEY: await local.authKey(),
      QS_CONTROL_URL: local.controlURL,
      QS_STATE_DIR: tmp('qs-sql-buyer-'),
      QS_HTTPFS: httpfs,
      QS_PEER: 'seller',
    };
    const started = Date.now();
    const { stdout, code } = await new Promise<{ stdout: string; code: number | null }>((done, fail) => {
      const child = execFile(
        process.execPath,
        [join(__dirname, 'sql-child.mjs')],
        { env, cwd: ROOT, timeout: 90_000 },
        (err, stdout, stderr) => {
          if (err && err.code === undefined) return fail(err);
          if (stderr) process.stderr.write(stderr);
          done({ stdout, code: child.exitCode });
        },
      );
    });
    expect(code).toBe(0);
    const out = JSON.parse(stdout.trim().split('\n').pop() as string);
    expect(out.statusBefore).toEqual({
      libtailscale_linked: true,
      running: false,
      hostname: null,
      tailnet_ips: [],
    });
    expect(out.up.running).toBe(true);
    expect(out.up.hostname).toBe('buyer');
    expect(out.up.tailnet_ips[0]).toMatch(/^100\./);
    expect(out.statusUp).toEqual({ libtailscale_linked: true, ...out.up });
    expect(out.proxyUp.p).toMatch(/^127\.0\.0\.1:\d+$/);
    expect(out.proxyUp.u).toBe('quackscale');
    expect(out.csv).toEqual({ n: String(xs.length), total: String(xs.reduce((a, b) => a + b, 0)) });
    expect(out.csvShortName).toEqual(out.csv);
    expect(out.down).toEqual({ shutdown_ok: true });
    expect(out.proxyDown).toEqual({ p: '', u: 'users-own' });
    expect(out.statusDown.running).toBe(false);
    expect(out.upNoRoute).toEqual(out.up);
    expect(out.proxyNoRoute).toEqual({ p: '', u: 'users-own' });
    expect(out.down2).toEqual({ shutdown_ok: true });
    expect(Date.now() - started).toBeLessThan(60_000);
  }, 120_000);
});
