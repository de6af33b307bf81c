// A static file server on node:http with what DuckDB's httpfs needs from one: HEAD with
// Content-Length, Accept-Ranges and Last-Modified, and single byte-range GETs answered 206
// with Content-Range (RFC 9110 §14). httpfs sends HEAD first, then reads Parquet footers and
// row groups (and CSV buffers) with `Range: bytes=a-b`. Used by the SQL tests and the SQL
// benchmark, attached to a tailnet listener or to a loopback port alike.
import { createReadStream, statSync } from 'node:fs';
import http from 'node:http';
import { basename } from 'node:path';
import { pipeline } from 'node:stream/promises';

/** What the server saw, so tests can tell that ranges (not whole-file GETs) were used. */
export interface FileServerStats {
  head: number;
  get: number;
  ranged: number;
  bytes: number;
}

/** A node:http server for `files`, each served at `/<basename>`; hand it sockets with `emit('connection')`. */
export function fileServer(files: readonly string[]): { server: http.Server; stats: FileServerStats } {
  const byPath = new Map(files.map((f) => [`/${basename(f)}`, f]));
  const stats: FileServerStats = { head: 0, get: 0, ranged: 0, bytes: 0 };
  const server = http.createServer((req, res) => {
    const file = byPath.get(new URL(req.url ?? '/', 'http://x').pathname);
    if (!file) return void res.writeHead(404, { 'content-length': 0 }).end();
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      return void res.writeHead(405, { allow: 'GET, HEAD', 'content-length': 0 }).end();
    }
    const st = statSync(file);
    const size = st.size;
    const common = { 'accept-ranges': 'bytes', 'last-modified': st.mtime.toUTCString() };
    if (req.method === 'HEAD') {
      stats.head++;
      return void res.writeHead(200, { ...common, 'content-length': size }).end();
    }
    stats.get++;
    let start = 0;
    let end = size - 1;
    const range = req.headers.range;
    if (range !== undefined) {
      // One range only (httpfs never asks for several); suffix ranges (`bytes=-n`) too.
      const m = /^bytes=(\d*)-(\d*)$/.exec(range.trim());
      if (!m || (m[1] === '' && m[2] === '')) {
        return void res.writeHead(416, { 'content-range': `bytes */${size}`, 'content-length': 0 }).end();
      }
      if (m[1] === '') {
        start = Math.max(0, size - Number(m[2]));
      } else {
        start = Number(m[1]);
        if (m[2] !== '') end = Math.min(end, Number(m[2]));
      }
      if (start > end || start >= size) {
        return void res.writeHead(416, { 'content-range': `bytes */${size}`, 'content-length': 0 }).end();
      }
      stats.ranged++;
      res.writeHead(206, {
        ...common,
        'content-range': `bytes ${start}-${end}/${size}`,
        'content-length': end - start + 1,
      });
    } else {
      res.writeHead(200, { ...common, 'content-length': size });
    }
    stats.bytes += end - start + 1;
    // A client that hangs up mid-body (DuckDB cancelling a read) is not a server error.
    pipeline(createReadStream(file, { start, end }), res).catch(() => res.destroy());
  });
  return { server, stats };
}
