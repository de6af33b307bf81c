/**
 * An undici Dispatcher over the tailnet, for `fetch(url, { dispatcher })` and undici's own
 * request API: undici's pool and keep-alive, with each connection a tailnet socket. https
 * goes through undici's TLS connector over that socket (its `httpSocket` path), so SNI, ALPN,
 * certificate checks and session resumption are undici's.
 */
import { createRequire } from 'node:module';
import type net from 'node:net';
import type { Agent, buildConnector } from 'undici';
import type { TailnetNet } from './net.js';

/**
 * undici's Agent options; `connect` takes only its object form, as in undici: TLS options for
 * https origins (`ca`, `rejectUnauthorized`, `servername`, …) and the connect `timeout`.
 */
export type TailnetDispatcherOptions = Omit<Agent.Options, 'connect'> & {
  connect?: buildConnector.BuildOptions;
};

type Undici = typeof import('undici');

/** undici, loaded on first use: it costs a node ~15 MB, and many never use it. */
function loadUndici(): Undici {
  return createRequire(import.meta.url)('undici') as Undici;
}

/**
 * undici's `connect` hook for one node: what {@link createTailnetDispatcher} and `tn.fetch`
 * give undici.
 */
export function tailnetConnector(
  tailnet: TailnetNet,
  tls: buildConnector.BuildOptions = {},
): buildConnector.connector {
  const undici = loadUndici();
  const secure = undici.buildConnector(tls);
  return (opts, callback) => {
    const port = Number(opts.port) || (opts.protocol === 'https:' ? 443 : 80);
    // undici's own connector defaults: a 10 s connect timeout and keep-alive after 60 s idle.
    const socket = tailnet.createConnection({
      host: opts.hostname,
      port,
      noDelay: true,
      keepAlive: true,
      keepAliveInitialDelay: 60_000,
      connectTimeout: tls.timeout ?? 10_000,
    });
    if (opts.protocol === 'https:') {
      secure({ ...opts, port: String(port), httpSocket: socket as net.Socket }, callback);
      return;
    }
    const onError = (err: Error): void => callback(err, null);
    socket.once('error', onError);
    socket.once('connect', () => {
      socket.off('error', onError);
      callback(null, socket as net.Socket);
    });
  };
}

/**
 * An undici Agent whose connections go over the tailnet.
 *
 * @example
 * const res = await fetch('http://db-server:8000/sales.csv', { dispatcher: tn.dispatcher() });
 */
export function createTailnetDispatcher(tailnet: TailnetNet, options: TailnetDispatcherOptions = {}): Agent {
  return new (loadUndici().Agent)({ ...options, connect: tailnetConnector(tailnet, options.connect) });
}
