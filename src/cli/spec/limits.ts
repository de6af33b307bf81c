/**
 * The connection limits `derp serve` and `control serve` share (src/guard/guard.ts; each default
 * and its origin in docs/server-limits.md). derper's own flag names where derper has the limit.
 */

export const LIMIT_OPTIONS = {
  'max-connections': {
    type: 'string',
    value: 'N',
    help: 'TCP connections held at once, in any phase; more are closed as they come',
    default: '10000',
  },
  'max-connections-per-ip': {
    type: 'string',
    value: 'N',
    help: 'connections held at once from one IPv4 address or IPv6 /64',
    default: '1000',
  },
  'accept-connection-limit': {
    type: 'string',
    value: 'PER_SECOND',
    help: 'connections accepted a second over the listener (more are closed at once), as derper',
    default: 'no limit',
  },
  'accept-connection-burst': {
    type: 'string',
    value: 'N',
    help: 'connections accepted at once above that rate',
    default: 'the rate',
  },
  'handshakes-per-ip': {
    type: 'string',
    value: 'PER_SECOND',
    help: 'handshakes (DERP logins, ts2021 upgrades) one address may start a second; more get HTTP 429',
    default: '20',
  },
  'handshake-burst': {
    type: 'string',
    value: 'N',
    help: 'handshakes one address may start at once above that rate',
    default: '40',
  },
  'request-timeout-ms': {
    type: 'string',
    value: 'MS',
    help: 'from accept to the end of the request headers, TLS handshake included',
    default: '30000',
  },
} as const;
