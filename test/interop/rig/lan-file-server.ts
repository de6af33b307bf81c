// The SQL tests' static file server (test/sql/file-server.ts: HEAD, single ranges) for a host on a lab LAN:
// `node lan-file-server.js PORT FILE…` serves each FILE at /<basename> on 0.0.0.0:PORT. Bundled with esbuild
// by natlab-routes.ts, since the host runs plain Node.
import { fileServer } from '../../sql/file-server.js';

const [port, ...files] = process.argv.slice(2);
const { server } = fileServer(files);
server.listen(Number(port), '0.0.0.0', () => console.log(`file server on 0.0.0.0:${port}`));
process.on('SIGTERM', () => {
  server.closeAllConnections();
  server.close(() => process.exit(0));
});
