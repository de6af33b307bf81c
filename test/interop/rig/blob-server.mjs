// A byte source and sink for NAT lab transfers, run inside a host's namespace:
//   node blob-server.mjs PORT FILE [BIND]
// listens on BIND:PORT, by default 127.0.0.1 (where tailscaled's userspace netstack and our node's --serve
// deliver tailnet TCP); a LAN host behind a subnet router binds '::' (IPv4 and IPv6). GET /blob?mb=N answers the first N MiB of FILE (all of it without mb); any other method answers
// "<bytes> <sha256>" of the request body.
import { createHash } from 'node:crypto';
import { createReadStream, statSync } from 'node:fs';
import http from 'node:http';

const [port, file, bind = '127.0.0.1'] = process.argv.slice(2);
const MB = 1024 * 1024;
const size = statSync(file).size;

const server = http.createServer((req, res) => {
  const url = new URL(req.url ?? '/', 'http://blob');
  if (req.method === 'GET') {
    const mb = url.searchParams.get('mb');
    const n = mb === null ? size : Math.min(size, Number(mb) * MB);
    res.writeHead(200, { 'content-length': String(n), 'content-type': 'application/octet-stream' });
    if (n === 0) res.end();
    else createReadStream(file, { start: 0, end: n - 1 }).pipe(res);
    return;
  }
  const hash = createHash('sha256');
  let n = 0;
  req.on('data', (d) => {
    hash.update(d);
    n += d.length;
  });
  req.on('end', () => res.end(`${n} ${hash.digest('hex')}`));
});
const listen = (host) =>
  server.listen(Number(port), host, () => console.log(`blob server on ${host}:${port}`));
// A namespace with IPv6 disabled cannot bind '::': serve IPv4 alone there.
server.once('error', (err) => {
  if (bind !== '::' || !['EAFNOSUPPORT', 'EADDRNOTAVAIL'].includes(err.code)) throw err;
  listen('0.0.0.0');
});
listen(bind);
process.on('SIGTERM', () => {
  server.closeAllConnections();
  server.close(() => process.exit(0));
});
