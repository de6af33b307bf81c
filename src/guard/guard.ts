/**
 * The limits and deadlines a server reachable from anywhere puts on connections before they
 * can cost it anything: how many it holds in all and from one source, how fast it accepts them
 * (derper's --accept-connection-limit/--accept-connection-burst, cmd/derper/derper.go
 * rateLimitedListener: accept, then close at once when over the rate), how fast one source may
 * start handshakes, and a deadline per phase a peer controls (the first being accept to the end
 * of the request headers, TLS handshake included: what Go's http.Server ReadTimeout bounds in
 * derper and Headscale, 30 s in both). Everything it sheds is counted by reason.
 *
 * Connections are found again by their address 4-tuple, which a TLS socket shares with the
 * TCP socket under it, so a deadline armed on accept can be cleared from an HTTP request.
 */
import type { Socket } from 'node:net';
import { SourceRateLimiter, TokenBucket } from './rate.js';
import { sourceKey } from './source.js';

/** The limits of one listener (see docs/server-limits.md for each default's origin). */
export interface ConnectionLimits {
  /** Connections held at once, in any phase; more are closed as they are accepted. */
  maxConnections: number;
  /** Connections held at once from one source (an IPv4 address or an IPv6 /64). */
  maxConnectionsPerSource: number;
  /** Connections accepted a second over the whole listener (Infinity: no limit, as derper). */
  acceptPerSecond: number;
  /** Accepts allowed at once above that rate (default: the rate, at least 1). */
  acceptBurst: number;
  /** Handshakes (a DERP login, a ts2021 upgrade) one source may start a second. */
  handshakesPerSecond: number;
  /** Handshakes one source may start at once above that rate. */
  handshakeBurst: number;
  /** Accept to the end of the request line and headers, TLS handshake included. */
  requestTimeoutMs: number;
}

/** The defaults: derper's and Headscale's where they have one, docs/server-limits.md says why for the rest. */
export const DEFAULT_LIMITS: Readonly<ConnectionLimits> = {
  maxConnections: 10_000,
  maxConnectionsPerSource: 1_000,
  acceptPerSecond: Number.POSITIVE_INFINITY,
  acceptBurst: Number.POSITIVE_INFINITY,
  handshakesPerSecond: 20,
  handshakeBurst: 40,
  requestTimeoutMs: 30_000,
};

/** A limit set to something that cannot work (zero or negative, not a number). */
export class LimitConfigError extends Error {
  override readonly name = 'LimitConfigError';
}

/**
 * `partial` over {@link DEFAULT_LIMITS}; the accept burst follows a given accept rate unless
 * set. Throws LimitConfigError naming the bad field.
 *
 * @example
 * resolveLimits({ acceptPerSecond: 50 });   // acceptBurst 50
 */
export function resolveLimits(partial: Partial<ConnectionLimits> = {}): ConnectionLimits {
  const given = Object.fromEntries(Object.entries(partial).filter(([, v]) => v !== undefined));
  const rate = partial.acceptPerSecond ?? DEFAULT_LIMITS.acceptPerSecond;
  const limits: ConnectionLimits = {
    ...DEFAULT_LIMITS,
    ...given,
    acceptBurst:
      partial.acceptBurst ?? (rate === Number.POSITIVE_INFINITY ? rate : Math.max(1, Math.ceil(rate))),
  };
  for (const [name, v] of Object.entries(limits)) {
    if (typeof v !== 'number' || Number.isNaN(v) || v <= 0)
      throw new LimitConfigError(`${name} must be a positive number, got ${String(v)}`);
  }
  return limits;
}

/** Reasons the guard itself sheds for; servers add their own through {@link ConnectionGuard.count}. */
export const GUARD_REASONS = [
  'accept_rate',
  'max_connections',
  'max_per_source',
  'handshake_rate',
  'timeout_request',
  'bad_request',
  'accept_error',
] as const;

interface Tracked {
  readonly socket: Socket;
  readonly source: string;
  timer: NodeJS.Timeout | undefined;
}

/** Where the guard reports what it sheds: a line per reason at most every 10 s. */
export interface GuardLogger {
  info(message: string): void;
}

/**
 * Admission, deadlines and shed counters for the connections of one server.
 *
 * @example
 * const guard = new ConnectionGuard(resolveLimits(), { name: 'derp', reasons: ['timeout_login'] });
 * server.prependListener('connection', (s) => guard.admit(s) && guard.arm(s, 'request', 30_000));
 */
export class ConnectionGuard {
  /** Connections shed, by reason (every known reason present, zero or not). */
  readonly shed = new Map<string, number>();
  readonly #byId = new Map<string, Tracked>();
  readonly #perSource = new Map<string, number>();
  readonly #accepts: TokenBucket;
  readonly #handshakes: SourceRateLimiter;
  readonly #lastLog = new Map<string, { at: number; since: number }>();
  #closing = false;

  constructor(
    readonly limits: ConnectionLimits,
    private readonly opts: { name: string; reasons?: readonly string[]; log?: GuardLogger } = {
      name: 'server',
    },
  ) {
    for (const r of [...GUARD_REASONS, ...(opts.reasons ?? [])]) this.shed.set(r, 0);
    this.#accepts = new TokenBucket(limits.acceptPerSecond, limits.acceptBurst);
    this.#handshakes = new SourceRateLimiter({
      perSecond: limits.handshakesPerSecond,
      burst: limits.handshakeBurst,
    });
  }

  /** Connections held now. */
  get open(): number {
    return this.#byId.size;
  }

  /** Sources holding connections now. */
  get sources(): number {
    return this.#perSource.size;
  }

  /**
   * Takes a just-accepted connection under the limits, or closes it at once (counted) and
   * returns false. Admitted connections are counted until they close.
   */
  admit(socket: Socket): boolean {
    const source = sourceKey(socket.remoteAddress);
    const reason = this.#closing
      ? 'closing'
      : !this.#accepts.take()
        ? 'accept_rate'
        : this.#byId.size >= this.limits.maxConnections
          ? 'max_connections'
          : (this.#perSource.get(source) ?? 0) >= this.limits.maxConnectionsPerSource
            ? 'max_per_source'
            : undefined;
    if (reason !== undefined) {
      socket.destroy();
      if (reason !== 'closing') this.count(reason, source);
      return false;
    }
    const id = connectionId(socket);
    const t: Tracked = { socket, source, timer: undefined };
    this.#byId.set(id, t);
    this.#perSource.set(source, (this.#perSource.get(source) ?? 0) + 1);
    socket.once('close', () => {
      clearTimeout(t.timer);
      if (this.#byId.get(id) === t) this.#byId.delete(id);
      const n = (this.#perSource.get(source) ?? 1) - 1;
      if (n > 0) this.#perSource.set(source, n);
      else this.#perSource.delete(source);
    });
    return true;
  }

  /**
   * Gives the connection `socket` belongs to (the accepted socket, or a TLS socket over it)
   * `ms` to finish `phase`: then it is closed and counted as `timeout_<phase>`. Replaces the
   * deadline armed before; a connection the guard did not admit is left alone.
   */
  arm(socket: Socket, phase: string, ms: number): void {
    const t = this.#byId.get(connectionId(socket));
    if (t === undefined) return;
    clearTimeout(t.timer);
    t.timer = setTimeout(() => {
      t.timer = undefined;
      if (t.socket.destroyed) return; // closed meanwhile (by Node's own request timer, say)
      t.socket.destroy();
      this.count(`timeout_${phase}`, t.source);
    }, ms);
    t.timer.unref();
  }

  /** Clears the deadline of the connection `socket` belongs to: its phase is over. */
  disarm(socket: Socket): void {
    const t = this.#byId.get(connectionId(socket));
    if (t === undefined) return;
    clearTimeout(t.timer);
    t.timer = undefined;
  }

  /** Takes a handshake token for `address`'s source; false (counted) when it is over its rate. */
  allowHandshake(address: string | undefined): boolean {
    const source = sourceKey(address);
    if (this.#handshakes.allow(source)) return true;
    this.count('handshake_rate', source);
    return false;
  }

  /** Counts one connection shed for `reason` (and says so in the log, at most every 10 s per reason). */
  count(reason: string, source?: string): void {
    this.shed.set(reason, (this.shed.get(reason) ?? 0) + 1);
    const log = this.opts.log;
    if (log === undefined) return;
    const now = Date.now();
    const last = this.#lastLog.get(reason) ?? { at: 0, since: 0 };
    last.since++;
    if (now - last.at >= 10_000) {
      log.info(
        `${this.opts.name}: shed ${last.since} connection(s) for ${reason} (latest from ${source ?? 'unknown'})`,
      );
      last.at = now;
      last.since = 0;
    }
    this.#lastLog.set(reason, last);
  }

  /** Closes every connection and refuses new ones (server shutdown). */
  closeAll(): void {
    this.#closing = true;
    for (const t of [...this.#byId.values()]) {
      clearTimeout(t.timer);
      t.socket.destroy();
    }
  }

  /**
   * The counters in Prometheus text, names prefixed `<prefix>_`; `more` adds reasons the server
   * counts itself (a login deadline, say) to the same family.
   */
  toPrometheus(prefix: string, more: Iterable<[string, number]> = []): string {
    const lines = [
      `# HELP ${prefix}_connections_shed Connections refused or closed by a limit or deadline, by reason.`,
      `# TYPE ${prefix}_connections_shed counter`,
      ...[...this.shed, ...more].map(([r, n]) => `${prefix}_connections_shed{reason="${r}"} ${n}`),
      `# HELP ${prefix}_tcp_connections Connections held, in any phase.`,
      `# TYPE ${prefix}_tcp_connections gauge`,
      `${prefix}_tcp_connections ${this.open}`,
      `# HELP ${prefix}_tcp_sources Sources (IPv4 addresses, IPv6 /64s) holding connections.`,
      `# TYPE ${prefix}_tcp_sources gauge`,
      `${prefix}_tcp_sources ${this.sources}`,
    ];
    return `${lines.join('\n')}\n`;
  }
}

/** The 4-tuple, which a TLS socket reports the same as the TCP socket it runs over. */
function connectionId(s: Socket): string {
  return `${s.remoteAddress}|${s.remotePort}|${s.localAddress}|${s.localPort}`;
}
