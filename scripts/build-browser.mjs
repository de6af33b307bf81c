// Bundles the browser entry (src/browser/index.ts) into dist/browser/quackscale.js: one ES module with no
// Node built-ins. node:stream and node:events come from their userland packages (readable-stream, events),
// Buffer from `buffer`; the few other built-ins the layers touch map to small shims (src/browser/shims) and
// node:http2 to our HTTP/2 client. Prints the size minified and gzipped.
//
//   node scripts/build-browser.mjs [--check]     # --check: fail if any node: import is left in the bundle
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { build } from 'esbuild';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const shim = (name) => join(root, 'src/browser/shims', `${name}.ts`);
const alias = {
  'node:stream': 'readable-stream',
  'node:events': 'events',
  'node:crypto': shim('crypto'),
  'node:os': shim('os'),
  'node:net': shim('net'),
  'node:util': shim('util'),
  'node:path': shim('path'),
  'node:dgram': shim('dgram'),
  'node:http2': join(root, 'src/browser/http2.ts'),
};

// Modules a page cannot have: each import of them gets a module whose every export throws, with a message
// saying so, when called (loading them is harmless: the code paths that call them are Node's).
const UNAVAILABLE = /^(node:(http|https|tls|fs|fs\/promises|dns|dns\/promises|zlib|worker_threads|child_process|module)|ws|undici)$/;
const NAMES = `execFile spawn lookup chmod mkdir readFile rename stat writeFile rm chmodSync existsSync readFileSync
  writeFileSync createReadStream statSync mkdirSync mkdtempSync rmSync readdirSync request createServer connect
  MessageChannel receiveMessageOnPort Worker workerData WebSocketServer WebSocket Agent fetch Server
  IncomingMessage ServerResponse createRequire`.split(/\s+/);
const unavailable = {
  name: 'unavailable-in-a-page',
  setup(b) {
    b.onResolve({ filter: UNAVAILABLE }, (args) => ({ path: args.path, namespace: 'unavailable' }));
    b.onLoad({ filter: /.*/, namespace: 'unavailable' }, (args) => ({
      // A plain function, so that `class X extends http.Agent` still defines (it throws once constructed).
      contents: `function u() { throw new Error(${JSON.stringify(`${args.path} is not available in a web page`)}); }
        ${NAMES.map((n) => `u.${n} = u; export const ${n} = u;`).join(' ')} export default u;`,
      loader: 'js',
    }));
  },
};

const out = join(root, 'dist/browser/quackscale.js');
const result = await build({
  entryPoints: [join(root, 'src/browser/index.ts')],
  outfile: out,
  bundle: true,
  format: 'esm',
  platform: 'browser',
  target: ['es2022'],
  minify: !process.argv.includes('--no-minify'),
  sourcemap: true,
  alias,
  plugins: [unavailable],
  inject: [shim('globals')],
  metafile: true,
  logLevel: 'warning',
});

const code = readFileSync(out);
const gz = gzipSync(code, { level: 9 });
const builtins = Object.keys(result.metafile.inputs).filter((p) => /^node:/.test(p));
console.log(
  `dist/browser/quackscale.js: ${(code.length / 1024).toFixed(1)} KiB minified, ${(gz.length / 1024).toFixed(1)} KiB gzipped`,
);
if (process.argv.includes('--check') && builtins.length > 0) {
  console.error(`node built-ins left in the bundle: ${builtins.join(', ')}`);
  process.exit(1);
}
if (process.argv.includes('--analyze')) {
  const sizes = Object.entries(result.metafile.outputs[Object.keys(result.metafile.outputs).find((k) => k.endsWith('.js'))].inputs)
    .map(([p, v]) => [p, v.bytesInOutput])
    .sort((a, b) => b[1] - a[1]);
  for (const [p, n] of sizes.slice(0, 40)) console.log(`${String(n).padStart(8)}  ${p}`);
}
