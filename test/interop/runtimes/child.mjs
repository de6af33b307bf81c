// Our node in another runtime (Node 22/24, Bun, Deno), started by runtimes.test.ts: it loads the built
// library (dist/), joins the control server it is given, and for each target peer downloads QS_MB MB from
// the peer's side and uploads QS_MB MB of its own through it, hashing both. It prints one line:
// RESULT <json>. The parent checks the hashes against what its HTTP server sent and received.
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const env = (name) => {
  const v = process.env[name];
  if (v === undefined) throw new Error(`${name} is not set`);
  return v;
};
const { Tailnet } = await import(new URL('../../../dist/index.js', import.meta.url).href);
const { runtime } = await import(new URL('../../../dist/platform/runtime.js', import.meta.url).href);
const MB = 1024 * 1024;
const size = Number(env('QS_MB')) * MB;
const targets = JSON.parse(env('QS_TARGETS')); // [{ name, ip, httpPort, label }]
const stateDir = mkdtempSync(join(tmpdir(), 'qs-rt-'));
const port = Number(env('QS_PORT'));
const tn = new Tailnet({
  hostname: env('QS_HOSTNAME'),
  controlURL: env('QS_CONTROL_URL'),
  authKey: env('QS_AUTH_KEY'),
  stateDir,
  derpHttp: true,
  port,
  endpoints: [`127.0.0.1:${port}`],
  ephemeral: true,
});

async function waitFor(what, fn, ms) {
  const end = Date.now() + ms;
  for (;;) {
    const v = fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

const result = { runtime: `${runtime.name} ${runtime.version}`, targets: [] };
try {
  await tn.up();
  for (const t of targets) {
    const peer = () => tn.status().peers.find((p) => p.hostname === t.name);
    await waitFor(`peer ${t.name}`, peer, 30_000);
    await tn.ping(t.name).catch(() => undefined); // starts disco; the path settles below
    if (t.expectDirect) {
      await waitFor(`direct path to ${t.name}`, () => peer()?.path.startsWith('direct'), 20_000);
    }
    const t0 = Date.now();
    const res = await tn.fetch(`http://${t.ip}:${t.httpPort}/blob?mb=${env('QS_MB')}`);
    const down = createHash('sha256');
    let downBytes = 0;
    for await (const chunk of res.body) {
      down.update(chunk);
      downBytes += chunk.length;
    }
    const body = randomBytes(size);
    const put = await tn.fetch(`http://${t.ip}:${t.httpPort}/up/${t.label}`, { method: 'PUT', body });
    const answer = await put.text();
    result.targets.push({
      name: t.name,
      status: res.status,
      downBytes,
      downSha: down.digest('hex'),
      upBytes: body.length,
      upSha: createHash('sha256').update(body).digest('hex'),
      answer,
      path: peer()?.path,
      ms: Date.now() - t0,
    });
  }
} catch (err) {
  result.error = err instanceof Error ? `${err.name}: ${err.message}\n${err.stack}` : String(err);
} finally {
  await tn.close();
  rmSync(stateDir, { recursive: true, force: true });
}
console.log(`RESULT ${JSON.stringify(result)}`);
