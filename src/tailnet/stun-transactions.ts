/**
 * STUN binding requests sent through magicsock's own socket (so the answer names the mapping
 * that socket has), matched to their responses by transaction id (RFC 8489 §6.3).
 */
import { randomBytes } from 'node:crypto';
import { parseStunResponse, stunRequest } from '../derp/stun.js';
import type { Logger } from '../wireguard/logger.js';
import type { AddrPort } from './disco.js';

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');

/** The STUN requests in flight on one socket. */
export class StunTransactions {
  readonly #waiters = new Map<string, (ep: AddrPort) => void>();

  constructor(
    private readonly send: (host: string, port: number, request: Uint8Array) => void,
    private readonly log: Logger,
  ) {}

  /** Our address as the STUN server on `host:port` sees it, or undefined after `timeoutMs`. */
  request(host: string, port: number, timeoutMs: number): Promise<AddrPort | undefined> {
    const txid = new Uint8Array(randomBytes(12));
    const key = hex(txid);
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.#waiters.delete(key);
        resolve(undefined);
      }, timeoutMs);
      timer.unref?.();
      this.#waiters.set(key, (ep) => {
        clearTimeout(timer);
        resolve(ep);
      });
      this.send(host, port, stunRequest(txid));
    });
  }

  /** A STUN datagram arrived: it answers the request with its transaction id, if any. */
  receive(d: Uint8Array): void {
    try {
      const r = parseStunResponse(d);
      const key = hex(r.txId);
      const waiter = this.#waiters.get(key);
      this.#waiters.delete(key);
      waiter?.({ ip: r.ip, port: r.port });
    } catch (err) {
      this.log.debug(`magicsock: bad STUN response: ${err instanceof Error ? err.message : String(err)}`);
    }
  }
}
