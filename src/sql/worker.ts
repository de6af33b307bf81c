// The worker thread that owns the tailnet node. DuckDB blocks the SQL thread while a table
// function runs, and a node needs a live event loop to log in, handshake and carry bytes, so
// it lives here; the HTTP proxy DuckDB's httpfs talks to, the forwarders and the serve_local
// listeners live here too, keeping tunnel bytes off the SQL thread. So does the coordinator of
// quackscale_serve, whose tables it reaches through the SQL thread (coordinator/sql-channel.ts).
import { type MessagePort, workerData } from 'node:worker_threads';
import { CoordinatorHost } from './coordinator/host.js';
import { SqlChannel } from './coordinator/sql-channel.js';
import { NodeHost } from './host.js';
import { type Envelope, type Reply, type Request, redact, SIGNAL_SLOT } from './protocol.js';

interface WorkerData {
  port: MessagePort;
  signal: SharedArrayBuffer;
  /** The coordinator's way to its tables; absent without the DuckDB instance. */
  sqlPort: MessagePort | undefined;
}

const { port, signal, sqlPort } = workerData as WorkerData;
const flag = new Int32Array(signal);
const host = new NodeHost();
const coordinator = new CoordinatorHost(sqlPort ? new SqlChannel(sqlPort, flag) : undefined);

/** The coordinator's state on a reply to one of its requests. */
const withCoordinator = (extra: Partial<Extract<Reply, { ok: true }>> = {}): Reply => ({
  ok: true,
  state: host.state(),
  coordinator: coordinator.status(),
  ...extra,
});

/** quackscale_serve: the coordinator, a key for its own node, and that node joined (unless join => false). */
async function serve(req: Extract<Request, { op: 'serve' }>): Promise<Reply> {
  const node = host.state();
  if (req.join && (node.running || node.login.status !== 'idle')) {
    throw new Error(
      `this process's node is already ${node.running ? 'up' : 'logging in'}: tailscale_down() first, or join => false`,
    );
  }
  await coordinator.start(req.start);
  let preauthKey: string;
  try {
    preauthKey = (await coordinator.newKey(true, false, 24 * 3600_000)).key;
  } catch (err) {
    await coordinator.stop();
    throw err;
  }
  if (!req.join) return withCoordinator({ preauthKey });
  const up = await host.up({ op: 'up', ...req.join, controlURL: coordinator.localURL, authKey: preauthKey });
  if (!up.ok) {
    // Half a mesh is not what was asked for: the next quackscale_serve starts afresh.
    await coordinator.stop();
    return up;
  }
  return { ...up, coordinator: coordinator.status(), preauthKey };
}

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
    case 'socks':
      return host.socksProxy();
    case 'serve':
      return serve(req);
    case 'coordinator':
      return withCoordinator();
    case 'newKey':
      return withCoordinator({ key: await coordinator.newKey(req.reusable, req.ephemeral, req.ttlMs) });
    case 'nodes':
      return withCoordinator({ nodes: coordinator.nodes() });
    case 'removeNode':
      return withCoordinator({ nodes: [await coordinator.removeNode(req.node)] });
    case 'stopCoordinator':
      await coordinator.stop();
      return withCoordinator();
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
