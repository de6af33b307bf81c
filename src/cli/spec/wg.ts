/** What `quackscale wg …` accepts: a plain WireGuard peer in userspace from a wg-quick file. */
import { defineCommand } from '../command.js';

const CONFIG = {
  type: 'string',
  value: 'FILE',
  help: 'a wg-quick config: [Interface] with PrivateKey and Address, and [Peer] sections',
  required: true,
} as const;
const VERBOSE = { type: 'boolean', short: 'v', help: 'log debug detail' } as const;

export const WG_UP = defineCommand({
  name: 'wg up',
  summary: 'bring up a WireGuard interface in userspace and answer pings on its addresses',
  usage: '--config FILE [-v]',
  description:
    'Runs the WireGuard device and the IP stack in the foreground (no TUN device, no root), logs ' +
    'handshakes, and exits cleanly on Ctrl-C or SIGTERM.',
  options: { config: CONFIG, verbose: VERBOSE },
  examples: ['quackscale wg up --config a.conf'],
});

export const WG_PING = defineCommand({
  name: 'wg ping',
  summary: 'ICMP echo through a WireGuard peer, printed like ping(8)',
  usage: '--config FILE ADDR [-c COUNT] [-i SECONDS] [-W TIMEOUT] [-s SIZE]',
  description: 'Exit status: 0 if any reply came, 1 if none, 2 on bad usage or configuration.',
  args: [{ name: 'ADDR', help: 'an IPv4 or IPv6 address inside the tunnel' }],
  options: {
    config: CONFIG,
    count: {
      type: 'string',
      short: 'c',
      value: 'COUNT',
      help: 'stop after COUNT pings',
      default: 'until Ctrl-C',
    },
    interval: { type: 'string', short: 'i', value: 'SECONDS', help: 'time between pings', default: '1' },
    timeout: {
      type: 'string',
      short: 'W',
      value: 'TIMEOUT',
      help: 'seconds to wait for each reply',
      default: '10',
    },
    size: { type: 'string', short: 's', value: 'SIZE', help: 'ICMP payload bytes', default: '56' },
    verbose: VERBOSE,
  },
  examples: [
    'quackscale wg ping --config b.conf 10.7.0.1 -c 3',
    'quackscale wg ping --config b.conf fd07::1 -s 1200',
  ],
});

export const WG_FORWARD = defineCommand({
  name: 'wg forward',
  summary: 'carry connections to a local TCP port into the tunnel (like onetun)',
  usage: '--config FILE --local HOST:PORT --remote ADDR:PORT [--local … --remote …] [-v]',
  description:
    'Each --local pairs with the --remote in the same position. Every connection is logged with its byte counts.',
  options: {
    config: CONFIG,
    local: { type: 'string', multiple: true, value: 'HOST:PORT', help: 'local address to listen on' },
    remote: { type: 'string', multiple: true, value: 'ADDR:PORT', help: 'where in the tunnel to connect' },
    verbose: VERBOSE,
  },
  examples: ['quackscale wg forward --config wg0.conf --local 127.0.0.1:8080 --remote 10.7.0.1:80'],
});

export const WG_EXPOSE = defineCommand({
  name: 'wg expose',
  summary: 'carry connections to a port on our tunnel address out to a local service (like wireproxy)',
  usage: '--config FILE --port PORT --to HOST:PORT [--port … --to …] [-v]',
  description:
    'Each --port pairs with the --to in the same position. Every connection is logged with its byte counts.',
  options: {
    config: CONFIG,
    port: { type: 'string', multiple: true, value: 'PORT', help: 'TCP port on our tunnel addresses' },
    to: {
      type: 'string',
      multiple: true,
      value: 'HOST:PORT',
      help: 'local service to connect each connection to',
    },
    verbose: VERBOSE,
  },
  examples: ['quackscale wg expose --config wg0.conf --port 8080 --to 127.0.0.1:3000'],
});
