/**
 * One DuckDB node of `npm run demo`: a separate process with an in-memory DuckDB and
 * QuackScale's functions installed (as `quackscale sql` has them), running the SQL the
 * narrator sends and answering with the result as DuckDB's CLI would print it. Auth key and
 * Quack token come from the environment (TS_AUTHKEY, QUACK_TAILNET_TOKEN), never from SQL.
 */
import { createReadStream, statSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { basename, join } from 'node:path';
import { createInterface } from 'node:readline';
import { DuckDBInstance, ResultReturnType } from '@duckdb/node-api';
import { renderTable } from '../cli/sql-render.js';
import { tableFromReader } from '../cli/sql-values.js';
import { installQuackscale } from '../sql/index.js';
import type { DemoReply, DemoRequest } from './protocol.js';

const instance = await DuckDBInstance.create(':memory:', {
  // Extensions are loaded by path from the PyPI wheels; nothing may be fetched at run time.
  autoinstall_known_extensions: 'false',
  autoload_known_extensions: 'false',
});
const connection = await instance.connect();
// DERP only (no advertised UDP endpoints): every packet stays on loopback, via the embedded relay.
await installQuackscale(connection, { instance, endpoints: [], extensions: false });
let files: http.Server | undefined;

/** Runs the statements of `sql` in order; the last one's result is the reply. */
async function runSql(sql: string): Promise<{ text: string; rows: string[][] }> {
  const extracted = await connection.extractStatements(sql);
  let text = '';
  let rows: string[][] = [];
  for (let i = 0; i < extracted.count; i++) {
    const reader = await (await extracted.prepare(i)).runAndReadAll();
    if (reader.returnType !== ResultReturnType.QUERY_RESULT) continue;
    const table = tableFromReader(reader, true);
    text = renderTable(table, 'duckbox', { maxWidth: 100, maxRows: 10 });
    rows = (table.json ?? []).slice(0, 20);
  }
  return { text, rows };
}

/**
 * A static file server for one directory (GET and HEAD, with single byte ranges, which httpfs
 * uses for larger files), standing in for `python3 -m http.server` on the seller's machine.
 */
function serveFiles(dir: string): Promise<number> {
  files = http.createServer((req, res) => {
    const name = basename(decodeURIComponent((req.url ?? '/').split('?')[0] ?? '/'));
    const path = join(dir, name);
    let size: number;
    try {
      size = statSync(path).size;
    } catch {
      res.writeHead(404).end();
      return;
    }
    const range = /^bytes=(\d+)-(\d*)$/.exec(req.headers.range ?? '');
    const start = range ? Number(range[1]) : 0;
    const end = range?.[2] ? Math.min(Number(range[2]), size - 1) : size - 1;
    const headers = {
      'content-type': 'text/csv',
      'content-length': end - start + 1,
      'accept-ranges': 'bytes',
    };
    if (range) res.writeHead(206, { ...headers, 'content-range': `bytes ${start}-${end}/${size}` });
    else res.writeHead(200, headers);
    if (req.method === 'HEAD') res.end();
    else createReadStream(path, { start, end }).pipe(res);
  });
  const server = files;
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () => resolve((server.address() as AddressInfo).port)),
  );
}

async function handle(req: DemoRequest): Promise<DemoReply> {
  const started = performance.now();
  const ms = () => Math.round(performance.now() - started);
  try {
    switch (req.kind) {
      case 'sql':
        return { id: req.id, ok: true, ...(await runSql(req.sql)), ms: ms() };
      case 'serve-files':
        return { id: req.id, ok: true, text: '', rows: [], port: await serveFiles(req.dir), ms: ms() };
      case 'exit':
        // After a failed step the node may still be up: a node left up keeps this process alive.
        await connection.run('CALL tailscale_down()');
        await new Promise<void>((resolve) => (files ? files.close(() => resolve()) : resolve()));
        connection.closeSync();
        instance.closeSync();
        return { id: req.id, ok: true, text: '', rows: [], ms: ms() };
    }
  } catch (err) {
    return { id: req.id, ok: false, error: err instanceof Error ? err.message : String(err), ms: ms() };
  }
}

// Requests are handled one at a time, in order: each waits for the one before it.
const lines = createInterface({ input: process.stdin });
for await (const line of lines) {
  if (!line.trim()) continue;
  const req = JSON.parse(line) as DemoRequest;
  const reply = await handle(req);
  process.stdout.write(`${JSON.stringify(reply)}\n`);
  if (req.kind === 'exit') break;
}
lines.close();
// No process.exit: after tailscale_down nothing may keep this process alive, and the demo's
// test checks that it ends by itself.
