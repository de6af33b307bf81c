/** Reading the shared connection-limit options of `derp serve` and `control serve` (spec/limits.ts). */
import type { ConnectionLimits } from '../guard/guard.js';
import { UsageError } from './log.js';
import type { LIMIT_OPTIONS } from './spec/limits.js';

type LimitValues = { [K in keyof typeof LIMIT_OPTIONS]?: string };

/**
 * The number in option `--name`, or undefined when it was not given; a usage error unless it is
 * a positive number (an integer when `integer`) no larger than `max`.
 *
 * @example
 * positiveOption('login-timeout-ms', '5000', true);   // 5000
 */
export function positiveOption(
  name: string,
  v: string | undefined,
  integer: boolean,
  max = Number.MAX_SAFE_INTEGER,
): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0 || n > max || (integer && !Number.isInteger(n)))
    throw new UsageError(`--${name} must be a positive ${integer ? 'integer' : 'number'} up to ${max}`);
  return n;
}

/**
 * The limits given on the command line (the rest keep their defaults).
 *
 * @example
 * DerpHttpServer.listen({ port, limits: parseLimits(values) });
 */
export function parseLimits(values: LimitValues): Partial<ConnectionLimits> {
  return {
    maxConnections: positiveOption('max-connections', values['max-connections'], true),
    maxConnectionsPerSource: positiveOption('max-connections-per-ip', values['max-connections-per-ip'], true),
    acceptPerSecond: positiveOption('accept-connection-limit', values['accept-connection-limit'], false),
    acceptBurst: positiveOption('accept-connection-burst', values['accept-connection-burst'], true),
    handshakesPerSecond: positiveOption('handshakes-per-ip', values['handshakes-per-ip'], false),
    handshakeBurst: positiveOption('handshake-burst', values['handshake-burst'], true),
    requestTimeoutMs: positiveOption('request-timeout-ms', values['request-timeout-ms'], true, 2 ** 31 - 1),
  };
}
