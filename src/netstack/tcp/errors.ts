import { constants } from 'node:os';

/** The Node-style error codes TCP and UDP sockets report. */
export type SocketErrorCode =
  | 'ECONNREFUSED'
  | 'ECONNRESET'
  | 'ETIMEDOUT'
  | 'EADDRINUSE'
  | 'EADDRNOTAVAIL'
  | 'EPIPE'
  | 'ECONNABORTED'
  | 'EHOSTUNREACH'
  | 'ENETUNREACH'
  | 'EMSGSIZE';

/**
 * An error shaped like the ones node:net and node:dgram raise (`code`, negative `errno`, `syscall`,
 * `address`, `port`), so that code written for Node's sockets recognises ours.
 */
export class SocketError extends Error {
  override readonly name = 'Error';
  readonly errno: number;
  constructor(
    readonly code: SocketErrorCode,
    readonly syscall: string,
    readonly address?: string,
    readonly port?: number,
    detail?: string,
  ) {
    const where = address === undefined ? '' : port === undefined ? ` ${address}` : ` ${address}:${port}`;
    super(`${syscall} ${code}${where}${detail ? ` (${detail})` : ''}`);
    this.errno = -(constants.errno[code] ?? 0);
  }
}

/** libuv's UV_EAI_NONAME: the errno of Node's getaddrinfo ENOTFOUND errors. */
export const EAI_NONAME_ERRNO = -3008;

/**
 * A name that resolved to nothing, shaped like the error dns.lookup gives (`code` ENOTFOUND,
 * `syscall` getaddrinfo, `hostname`), which is what clients test for.
 */
export class LookupError extends Error {
  readonly code = 'ENOTFOUND';
  readonly errno = EAI_NONAME_ERRNO;
  readonly syscall = 'getaddrinfo';
  constructor(
    readonly hostname: string,
    detail?: string,
  ) {
    super(`getaddrinfo ENOTFOUND ${hostname}${detail ? ` (${detail})` : ''}`);
  }
}
