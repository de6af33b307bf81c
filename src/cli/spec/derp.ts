/** What `quackscale derp …` accepts: a DERP relay (like derper) and a probe (like derpprobe). */
import { defineCommand } from '../command.js';
import { LIMIT_OPTIONS } from './limits.js';

export const DERP_SERVE = defineCommand({
  name: 'derp serve',
  summary: "run a DERP relay (and STUN) that Tailscale's clients and ours accept, like derper",
  usage: '--addr HOST:PORT [--tls-cert FILE --tls-key FILE] [--stun-port PORT] [options]',
  description:
    'Serves /derp (HTTP upgrade and WebSocket), /derp/probe, /derp/latency-check, /generate_204 and ' +
    'Prometheus counters on /metrics, over plain HTTP or, with a certificate, TLS. Runs until Ctrl-C or SIGTERM. ' +
    'Every deadline and limit below is explained in docs/server-limits.md.',
  options: {
    addr: {
      type: 'string',
      value: 'HOST:PORT',
      help: 'address to listen on ([IPv6]:PORT for IPv6; an empty HOST means 0.0.0.0)',
      required: true,
    },
    'tls-cert': { type: 'string', value: 'FILE', help: 'PEM certificate: serve TLS (with --tls-key)' },
    'tls-key': { type: 'string', value: 'FILE', help: 'PEM private key of --tls-cert' },
    'stun-port': {
      type: 'string',
      value: 'PORT',
      help: 'answer STUN on this UDP port (0: any free port)',
      default: 'no STUN',
    },
    'max-clients': { type: 'string', value: 'N', help: 'DERP clients connected at once', default: '10000' },
    ...LIMIT_OPTIONS,
    'login-timeout-ms': {
      type: 'string',
      value: 'MS',
      help: 'from the upgrade to the client’s ClientInfo frame, as derper',
      default: '10000',
    },
    'pong-timeout-ms': {
      type: 'string',
      value: 'MS',
      help: 'close a client that acks pings and leaves the keepalive ping unanswered this long',
      default: '15000',
    },
    'write-timeout-ms': {
      type: 'string',
      value: 'MS',
      help: 'close a client whose writes make no progress this long (derper --tcp-write-timeout)',
      default: '2000',
    },
    verbose: { type: 'boolean', short: 'v', help: 'log each client' },
  },
  examples: [
    'quackscale derp serve --addr 127.0.0.1:3340 --stun-port 3478',
    'quackscale derp serve --addr 0.0.0.0:443 --tls-cert cert.pem --tls-key key.pem --stun-port 3478',
  ],
});

export const DERP_PROBE = defineCommand({
  name: 'derp probe',
  summary: 'check a DERP relay end to end: two clients echo packets, with RTT and throughput',
  usage: 'URL [--count N] [--size BYTES] [--websocket] [--insecure | --cert-name NAME]',
  description:
    'Two clients connect; one sends packets to the other, which echoes them back; each comes back checked ' +
    'by SHA-256. Exit status 0 only if every packet came back intact.',
  args: [{ name: 'URL', help: 'the relay: http://HOST:PORT/derp, https://…, ws://… or wss://…' }],
  options: {
    count: { type: 'string', value: 'N', help: 'packets to send', default: '10' },
    size: { type: 'string', value: 'BYTES', help: 'bytes per packet (1 to 65536)', default: '1024' },
    websocket: { type: 'boolean', help: 'speak DERP over WebSocket' },
    insecure: { type: 'boolean', help: "don't verify the TLS certificate" },
    'cert-name': {
      type: 'string',
      value: 'NAME',
      help: 'sha256-raw:HEX pins the certificate (a DERP map CertName); another value is the name to verify',
    },
    'timeout-ms': {
      type: 'string',
      value: 'MS',
      help: 'give up on packets still missing after this',
      default: '30000',
    },
  },
  examples: [
    'quackscale derp probe http://127.0.0.1:3340/derp --count 100 --size 1200',
    'quackscale derp probe https://127.0.0.1:3340/derp --cert-name sha256-raw:3f0c…',
  ],
});
