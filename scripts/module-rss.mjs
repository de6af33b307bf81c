// What each module adds to a node's resident memory: every row imports one module into a fresh
// Node process and reports the RSS and V8 heap it added (median of three processes), so the
// rows overlap (a layer's row includes the dependencies it loads). The last rows are a whole
// node: after `up()` against an embedded control server, and after two idle seconds, as
// `npm run bench -- tailnet` measures it. Needs `npm run build`.
//
//   node scripts/module-rss.mjs
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { promisify } from 'node:util';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const dist = (p) => pathToFileURL(join(root, 'dist', p)).href;
const run = promisify(execFile);
const MB = 2 ** 20;

const MODULES = [
  ['node:crypto'],
  ['node:http'],
  ['node:http2'],
  ['tweetnacl', 'CommonJS: imported from ESM, Node lexes it for named exports'],
  ['@noble/hashes/blake2.js'],
  ['@noble/ciphers/chacha.js'],
  [dist('wireguard/index.js'), 'quackscale/wireguard'],
  [dist('netstack/index.js'), 'quackscale/netstack'],
  [dist('derp/index.js'), 'quackscale/derp'],
  [dist('control/index.js'), 'quackscale/control (client and server)'],
  [dist('tailnet/tailnet.js'), 'the Tailnet class alone'],
  [dist('index.js'), 'quackscale (everything but sql)'],
];

/** RSS and heap (bytes) before and after `body` runs in a fresh process. */
async function measure(body, env = {}) {
  const code = `
    const m = () => { const u = process.memoryUsage(); return [u.rss, u.heapUsed]; };
    const before = m();
    ${body}
    const after = m();
    console.log(JSON.stringify({ before, after }));
    process.exit(0);`;
  const { stdout } = await run(process.execPath, ['--input-type=module', '-e', code], {
    cwd: root,
    env: { ...process.env, ...env },
  });
  return JSON.parse(stdout.trim().split('\n').at(-1));
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function row(label, body, env) {
  const runs = [];
  for (let i = 0; i < 3; i++) runs.push(await measure(body, env));
  const rss = median(runs.map((r) => r.after[0] - r.before[0])) / MB;
  const heap = median(runs.map((r) => r.after[1] - r.before[1])) / MB;
  const total = median(runs.map((r) => r.after[0])) / MB;
  return { label, rss, heap, total };
}

const rows = [];
const bare = await row('bare Node (nothing imported)', '');
rows.push({ ...bare, rss: bare.total, heap: 0 });
for (const [spec, note] of MODULES) {
  rows.push({ ...(await row(note ?? spec, `await import(${JSON.stringify(spec)});`)), spec });
}

// A whole node, in a child as the bench runs it, joined to an embedded control server here.
const { startLocalTailnet } = await import(dist('tailnet/local.js'));
const dir = mkdtempSync(join(tmpdir(), 'qs-module-rss-'));
const local = await startLocalTailnet({ stateDir: join(dir, 'control'), stunPort: -1 });
try {
  const node = (wait) => `
    const { Tailnet } = await import(${JSON.stringify(dist('tailnet/tailnet.js'))});
    const port = 20000 + Math.floor(Math.random() * 20000);
    const tn = new Tailnet({ hostname: 'rss-' + port, controlURL: process.env.QS_CONTROL,
      authKey: process.env.QS_KEY, stateDir: process.env.QS_DIR + '/' + port, derpHttp: true,
      port, endpoints: ['127.0.0.1:' + port] });
    await tn.up();
    await new Promise((r) => setTimeout(r, ${wait}));`;
  const env = async () => ({ QS_CONTROL: local.controlURL, QS_KEY: await local.authKey(), QS_DIR: dir });
  rows.push(await row('a node: import, up()', node(0), await env()));
  rows.push(await row('a node: import, up(), 2 s idle', node(2000), await env()));
} finally {
  await local.close();
  rmSync(dir, { recursive: true, force: true });
}

console.log('| module | RSS added | JS heap added |\n|---|---|---|');
for (const r of rows) {
  const name = r.spec && !r.spec.startsWith('file:') && r.label !== r.spec ? `${r.spec} (${r.label})` : r.label;
  console.log(`| ${name} | ${r.rss.toFixed(1)} MB | ${r.heap.toFixed(1)} MB |`);
}
