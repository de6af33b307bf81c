// The worker thread that owns the tailnet node. DuckDB blocks the SQL thread while a table
// function runs, and a node needs a live event loop to log in, handshake and carry bytes, so
// it lives here; the HTTP proxy DuckDB's httpfs talks to lives here too, keeping tunnel bytes
// off the SQL thread.
import { type MessagePort, workerData } from 'node:worker_threads';
import type { HttpProxy } from '../tailnet/http-proxy.js';
import { Tailnet } from '../tailnet/tailnet.js';
import {
  type Envelope,
  type NodeState,
  type ProxyEndpoint,
  type Reply,
  type Request,
  redact,
  SIGNAL_SLOT,
} from './protocol.js';

interface WorkerData {
  port: MessagePort;
  signal: SharedArrayBuffer;
}

const { port, signal } = workerData as WorkerData;
const flag = new Int32Array(signal);
let node: Tailnet | undefined;
let proxy: HttpProxy | undefined;

function state(): NodeState {
  if (!node) return { running: false, hostname: null, tailnetIps: [] };
  const s = node.status();
  return { running: s.running, hostname: s.self.hostname || null, tailnetIps: s.self.addresses };
}

async function handle(req: Request): Promise<Reply> {
  switch (req.op) {
    case 'status':
      return { ok: true, state: state() };
    case 'down': {
      const n = node;
      node = undefined;
      proxy = undefined;
      // Tailnet.close closes the proxy too (it registered it as a closer).
      await n?.close();
      return { ok: true, state: state() };
    }
    case 'up': {
      if (node?.status().running) return { ok: true, state: state(), ...proxyReply() };
      const tn = new Tailnet({
        hostname: req.hostname,
        authKey: req.authKey,
        controlURL: req.controlURL,
        stateDir: req.stateDir,
        ephemeral: req.ephemeral,
        derpHttp: req.derpHttp,
        endpoints: req.endpoints,
      });
      try {
        await tn.up();
        proxy = req.httpRoute ? await tn.httpProxy() : undefined;
      } catch (err) {
        await tn.close().catch(() => {});
        return { ok: false, error: redact(err, [req.authKey]) };
      }
      node = tn;
      return { ok: true, state: state(), ...proxyReply() };
    }
  }
}

function proxyReply(): { proxy?: ProxyEndpoint } {
  if (!proxy) return {};
  return {
    proxy: { host: proxy.host, port: proxy.port, username: proxy.username, password: proxy.password },
  };
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
