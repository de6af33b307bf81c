// Serves the example on http://127.0.0.1:8070/ : this folder, and the bundle from dist/browser (npm run build).
//   node examples/browser/serve.mjs [port]
import { readFile } from 'node:fs/promises';
import http from 'node:http';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const files = {
  '/': [join(here, 'index.html'), 'text/html'],
  '/app.js': [join(here, 'app.js'), 'text/javascript'],
  '/quackscale.js': [join(here, '../../dist/browser/quackscale.js'), 'text/javascript'],
  '/quackscale.js.map': [join(here, '../../dist/browser/quackscale.js.map'), 'application/json'],
};
const port = Number(process.argv[2] ?? 8070);
http
  .createServer(async (req, res) => {
    const f = files[new URL(req.url, 'http://x').pathname];
    if (!f) return res.writeHead(404).end('not found\n');
    try {
      res.writeHead(200, { 'content-type': f[1] }).end(await readFile(f[0]));
    } catch (err) {
      res.writeHead(500).end(`${err.message} (run npm run build first)\n`);
    }
  })
  .listen(port, '127.0.0.1', () => console.log(`http://127.0.0.1:${port}/`));
