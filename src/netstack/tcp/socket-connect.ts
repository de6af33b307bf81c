/**
 * The arguments of net.Socket.connect, read the way Node reads them (lib/net.js
 * normalizeArgs): `(options[, listener])` or `(port[, host][, listener])`, a port given as a
 * number or a decimal string, and a host name resolved through a `lookup` with dns.lookup's
 * signature, so that a library's own lookup (or the tailnet's MagicDNS) can stand in.
 */
import { isIP, type LookupFunction } from 'node:net';
import { LookupError } from './errors.js';

/** What {@link TcpSocket.connect} takes as options: net.Socket.connect's TCP options. */
export interface TcpSocketConnectOptions {
  /** 1–65535, a number or a decimal string. */
  port: number | string;
  /** An IP literal, or a name for `lookup` (default 'localhost', as Node). */
  host?: string;
  localPort?: number;
  /** 4 or 6: the address family `lookup` is asked for (default either). */
  family?: number;
  /** Resolves `host` (default: the socket's own lookup). */
  lookup?: LookupFunction;
  noDelay?: boolean;
  keepAlive?: boolean;
  keepAliveInitialDelay?: number;
  /** The idle timeout ({@link TcpSocket.setTimeout}), ms. */
  timeout?: number;
  /** Fail with ETIMEDOUT when the handshake takes longer, ms (Node has none: its SYN retries bound it). */
  connectTimeout?: number;
}

/** net.Socket.connect's argument forms. */
export type ConnectArgs =
  | [options: TcpSocketConnectOptions, listener?: () => void]
  | [port: number | string, host?: string, listener?: () => void]
  | [port: number | string, listener?: () => void];

/** An options object with a valid numeric port, and the listener; throws Node's RangeError for a bad port. */
export function normalizeConnectArgs(
  args: ConnectArgs,
): [TcpSocketConnectOptions & { port: number; host: string }, (() => void) | undefined] {
  const [first, second, third] = args;
  const listener = [second, third].find((a): a is () => void => typeof a === 'function');
  const opts: TcpSocketConnectOptions =
    typeof first === 'object' && first !== null
      ? first
      : { port: first, host: typeof second === 'string' ? second : undefined };
  if ((opts as { path?: unknown }).path !== undefined) {
    throw new TypeError('IPC paths are not on the tailnet: connect to a host and port');
  }
  return [{ ...opts, port: validPort(opts.port), host: opts.host || 'localhost' }, listener];
}

/** Node's ERR_SOCKET_BAD_PORT, thrown synchronously as net.connect throws it. */
function validPort(port: unknown): number {
  const n = typeof port === 'string' && /^\d+$/.test(port.trim()) ? Number(port) : port;
  if (typeof n !== 'number' || !Number.isInteger(n) || n < 1 || n > 65535) {
    const err = new RangeError(`Port should be >= 1 and < 65536. Received ${String(port)}.`);
    (err as RangeError & { code: string }).code = 'ERR_SOCKET_BAD_PORT';
    throw err;
  }
  return n;
}

/**
 * Resolves `host` to one address: an IP literal at once (no family reported: nothing was
 * looked up), a name through `lookup`; with no lookup, a name is ENOTFOUND.
 */
export function lookupOnce(
  host: string,
  family: number | undefined,
  lookup: LookupFunction | undefined,
  done: (err: Error | null, address?: string, family?: number) => void,
): void {
  const literal = host.replace(/^\[|\]$/g, '');
  if (isIP(literal)) {
    done(null, literal);
    return;
  }
  if (!lookup) {
    process.nextTick(() => done(new LookupError(host, 'no lookup to resolve names with')));
    return;
  }
  lookup(host, { family: family === 4 || family === 6 ? family : 0, all: false }, (err, address, fam) => {
    if (err) done(err);
    else if (typeof address === 'string') done(null, address, fam);
    else done(new LookupError(host, 'lookup returned no address'));
  });
}
