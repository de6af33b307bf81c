// The worker thread that owns the tailnet node. DuckDB blocks the SQL thread while a table
// function runs, and a node needs a live event loop to log in, handshake and carry bytes, so
// it lives here; the HTTP proxy DuckDB's httpfs talks to, the forwarders and the serve_local
// listeners live here too, keeping tunnel bytes off the SQL thread.
import { type MessagePort, workerData } from 'node:worker_threads';
import { NodeHost } from './host.js';
import { type Envelope, type Reply, type Request, redact, SIGNAL_SLOT } from './protocol.js';

interface WorkerData {
  port: MessagePort;
  signal: SharedArrayBuffer;
}

const { port, signal } = workerData as WorkerData;
const flag = new Int32Array(signal);
const host = new NodeHost();

async function handle(req: Request): Promise<Reply> {
  switch (req.op) {
    case 'status':
      return { ok: true, state: host.state() };
    case 'down':
      return host.down();
    case 'up':
      return host.up(req);
    case 'login':
      return host.login(req);
    case 'peers':
      return host.peers();
    case 'serveLocal':
      return host.serveLocal(req.port, req.localPort);
    case 'ping':
      return host.ping(req.host, req.port, req.timeoutMs);
    case 'forward':
      return host.forward(req.host, req.port, req.localPort);
  }
}

port.on('message', (msg: Envelope<Request>) => {
  void handle(msg.body)
    .catch((err: unknown): Reply => ({ ok: false, error: redact(err, []) }))
    .then((body) => {
      // Post first, then signal: once the SQL thread sees the counter move, the reply is queued.
      port.postMessage({ id: msg.id, body } satisfies Envelope<Reply>);
      Atomics.add(flag, SIGNAL_SLOT, 1);
      Atomics.notify(flag, SIGNAL_SLOT);
    });
});
