/** What `quackscale up | status | ping | down` accept: a tailnet node in the foreground, and its local API. */
import { defineCommand } from '../command.js';

const STATE_DIR = {
  type: 'string',
  value: 'DIR',
  help: "the node's state directory (keys, login, the local API socket)",
  required: true,
} as const;

export const UP = defineCommand({
  name: 'up',
  summary: 'join a tailnet and run a node in the foreground',
  usage: '--state-dir DIR [--control-url URL] [--authkey KEY] [options]',
  description:
    'Logs in to the control server (with the auth key, the login saved in the state dir, or ' +
    'interactively: it prints a URL to approve), brings up WireGuard over direct UDP and DERP, ' +
    'and runs until Ctrl-C, SIGTERM or `quackscale down`. It prints the node name and addresses ' +
    'once up. `status`, `ping` and `down` talk to it through a unix socket in the state dir (0600).',
  options: {
    'control-url': {
      type: 'string',
      value: 'URL',
      help: 'control server: Tailscale, Headscale, or `quackscale control serve`',
      default: 'https://controlplane.tailscale.com',
    },
    authkey: {
      type: 'string',
      value: 'KEY',
      help: 'auth key (Tailscale) or pre-auth key (Headscale, `quackscale control authkey`)',
      default: 'env TS_AUTHKEY; without one, an interactive login',
    },
    'state-dir': STATE_DIR,
    hostname: {
      type: 'string',
      value: 'NAME',
      help: 'node name',
      default: 'the saved one, else the OS hostname',
    },
    ephemeral: {
      type: 'boolean',
      help: 'register as ephemeral: control removes the node soon after it goes away',
    },
    serve: {
      type: 'string',
      multiple: true,
      value: 'PORT[:LOCALPORT]',
      help: 'carry tailnet TCP connections to PORT to 127.0.0.1:LOCALPORT (LOCALPORT defaults to PORT)',
    },
    forward: {
      type: 'string',
      multiple: true,
      value: 'LOCALPORT:HOST:PORT',
      help: 'listen on 127.0.0.1:LOCALPORT and carry each connection to HOST:PORT on the tailnet',
    },
    'http-proxy': {
      type: 'string',
      value: 'PORT',
      help: 'an HTTP proxy on 127.0.0.1:PORT to tailnet hosts (prints its URL with credentials)',
    },
    socks5: {
      type: 'string',
      value: 'PORT',
      help: 'a SOCKS5 proxy on 127.0.0.1:PORT to tailnet hosts (prints its URL with credentials)',
    },
    'derp-http': {
      type: 'boolean',
      help:
        'reach DERP relays over plain HTTP instead of TLS, for relays that only speak HTTP (env ' +
        'TS_DEBUG_USE_DERP_HTTP=1); the embedded relay of `control serve --derp` needs none',
    },
    'no-peer-mtu': {
      type: 'boolean',
      help:
        'no path MTU discovery: 1,420-byte packets toward every peer, even our own nodes on a ' +
        'direct path that carries more (jumbo frames, loopback)',
    },
    'crypto-workers': {
      type: 'string',
      value: 'N',
      help:
        'seal and open WireGuard packets on N worker threads besides the main one; for machines ' +
        'with cores to spare',
      default: '0',
    },
    port: {
      type: 'string',
      value: 'UDPPORT',
      help: 'UDP port for WireGuard and disco',
      default: 'any free port',
    },
    endpoint: {
      type: 'string',
      multiple: true,
      value: 'IP:PORT',
      help: "advertise this UDP endpoint instead of discovering them (port 0: the node's own port)",
    },
    'accept-routes': {
      type: 'boolean',
      help: "use peers' subnet routes (control's primary router for each prefix), as tailscale up --accept-routes",
    },
    'advertise-routes': {
      type: 'string',
      value: 'PREFIX[,PREFIX…]',
      help:
        "route these prefixes for the tailnet through this host's sockets (control must approve them; " +
        'Headscale: nodes approve-routes)',
    },
    'advertise-exit-node': {
      type: 'boolean',
      help: 'offer this node as an exit node (advertise 0.0.0.0/0 and ::/0)',
    },
    'exit-node': {
      type: 'string',
      value: 'NAME|IP',
      help: "send everything that is not the tailnet's or a routed subnet's through this peer",
    },
    'exit-node-allow-lan-access': {
      type: 'boolean',
      help: "with --exit-node, the proxies' direct routes still reach this host's LANs",
    },
    'metrics-listen': {
      type: 'string',
      value: 'ADDR',
      help:
        'serve Prometheus metrics at http://ADDR/metrics; ADDR is PORT (on 127.0.0.1), HOST:PORT or ' +
        '[IPv6]:PORT (names in docs/operations-tools.md)',
    },
    verbose: { type: 'boolean', short: 'v', help: 'log debug detail' },
  },
  examples: [
    'quackscale up --control-url http://127.0.0.1:8080 --authkey "$KEY" --state-dir ./a --hostname alpha',
    'quackscale up --state-dir ./a --metrics-listen 9100      # curl http://127.0.0.1:9100/metrics',
    'quackscale up --state-dir ./a --serve 9000:8999            # tailnet port 9000 -> local 8999',
    'quackscale up --state-dir ./b --forward 18998:alpha:9000   # local 18998 -> alpha:9000',
    'TS_AUTHKEY=tskey-… quackscale up --state-dir ./n --socks5 1080',
    'quackscale up --state-dir ./r --advertise-routes 192.168.1.0/24     # a subnet router',
    'quackscale up --state-dir ./c --accept-routes --exit-node gateway   # use routes and an exit node',
  ],
});

export const STATUS = defineCommand({
  name: 'status',
  summary: 'show the running node and its peers',
  usage: '--state-dir DIR [--json]',
  description:
    'One line per node: first address, name, online state and path (direct endpoint or DERP region).',
  options: {
    'state-dir': STATE_DIR,
    json: {
      type: 'boolean',
      help: 'print the status as JSON in the shape of `tailscale status --json` (docs/operations-tools.md)',
    },
  },
  examples: [
    'quackscale status --state-dir ./b',
    "quackscale status --state-dir ./b --json | jq '.Peer[] | {HostName, CurAddr, Relay}'",
  ],
});

export const PING = defineCommand({
  name: 'ping',
  summary: 'ping a peer: disco (the path, direct or DERP, and latency), TSMP or ICMP',
  usage: '--state-dir DIR HOST [-c N] [--tsmp | --icmp]',
  args: [{ name: 'HOST', help: 'a MagicDNS name, FQDN or tailnet address' }],
  options: {
    'state-dir': STATE_DIR,
    count: { type: 'string', short: 'c', value: 'N', help: 'pings to send, one a second', default: '1' },
    tsmp: {
      type: 'boolean',
      help: "a TSMP ping: through WireGuard to the peer's node, not its host's IP stack",
    },
    icmp: { type: 'boolean', help: "an ICMP echo: through WireGuard and the peer's IP stack" },
  },
  examples: ['quackscale ping --state-dir ./b alpha -c 3', 'quackscale ping --state-dir ./b alpha --tsmp'],
});

export const DOWN = defineCommand({
  name: 'down',
  summary: 'stop the node running with this state dir',
  usage: '--state-dir DIR',
  options: { 'state-dir': STATE_DIR },
  examples: ['quackscale down --state-dir ./a'],
});

export const NETCHECK = defineCommand({
  name: 'netcheck',
  summary: 'report UDP, public endpoints, NAT mapping and DERP latency, as `tailscale netcheck`',
  usage: '(--state-dir DIR | --derp-map FILE) [--json]',
  description:
    'STUN to every region of the DERP map from fresh sockets of this process (the node keeps running ' +
    'undisturbed): whether UDP works over IPv4 and IPv6, the public endpoints, whether the NAT maps each ' +
    'destination to a new port (MappingVariesByDestIP), the latency to each region and the nearest; with ' +
    'no UDP answer, the latency over HTTPS. The DERP map comes from the running node of --state-dir, or ' +
    'a JSON file (`tailscale debug derp-map` writes one).',
  options: {
    'state-dir': { ...STATE_DIR, required: false },
    'derp-map': { type: 'string', value: 'FILE', help: 'a DERP map as JSON (tailcfg.DERPMap)' },
    json: {
      type: 'boolean',
      help: 'print the report as JSON, in the shape of `tailscale netcheck --format=json` (docs/operations-tools.md)',
    },
  },
  examples: ['quackscale netcheck --state-dir ./a', 'quackscale netcheck --derp-map derp.json --json'],
});
