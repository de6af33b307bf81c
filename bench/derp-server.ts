/** Child process of the DERP benchmark: our relay alone on its core, reporting its memory on request. */
import { DerpHttpServer } from '../src/derp/http-server.js';

// Hundreds of clients log in from 127.0.0.1 at once: the per-source login rate would refuse most.
const srv = await DerpHttpServer.listen({
  port: 0,
  serverOptions: { maxClients: 100_000 },
  limits: { handshakesPerSecond: Number.POSITIVE_INFINITY },
});
process.on('message', (m: { cmd: string }) => {
  if (m.cmd === 'mem') {
    (globalThis as { gc?: () => void }).gc?.();
    const u = process.memoryUsage();
    process.send!({ rss: u.rss, heapUsed: u.heapUsed, clients: srv.derp.clientKeyCount });
  } else if (m.cmd === 'stop') {
    void srv.close().then(() => process.exit(0));
  }
});
process.send!({ port: srv.port });
