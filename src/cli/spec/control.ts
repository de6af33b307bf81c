/** What `quackscale control …` accepts: the embedded control server and the control client. */
import { defineCommand } from '../command.js';
import { LIMIT_OPTIONS } from './limits.js';

const SERVER_STATE = {
  type: 'string',
  value: 'DIR',
  help: "the control server's state directory (nodes, keys, admin.json)",
  required: true,
} as const;
const NODE_STATE = {
  type: 'string',
  value: 'DIR',
  help: "the client's state directory (machine and node keys, login)",
  required: true,
} as const;
const LOGIN_ARG = [
  { name: 'URL|ID', help: 'the login URL (…/register/<id>) the node printed, or its id' },
] as const;

export const CONTROL_SERVE = defineCommand({
  name: 'control serve',
  summary: 'run a control server that tailscaled and our nodes join (ts2021), with an optional DERP relay',
  usage: '--addr HOST:PORT --state-dir DIR [--derp | --derp-map FILE] [options]',
  description:
    'Registers nodes with auth keys (`control authkey`) or interactive logins (`control approve`), ' +
    'allocates addresses from 100.64.0.0/10 and fd7a:115c:a1e0::/48, streams netmaps and compiles ' +
    'the ACL policy into packet filters. Runs until Ctrl-C or SIGTERM; state survives restarts. ' +
    'Every deadline and limit below is explained in docs/server-limits.md (--derp applies the same connection limits).',
  options: {
    addr: { type: 'string', value: 'HOST:PORT', help: 'address to listen on', required: true },
    'state-dir': SERVER_STATE,
    derp: {
      type: 'boolean',
      help: 'run our DERP relay and STUN in this process, and a DERP map pointing at them',
    },
    'derp-map': {
      type: 'string',
      value: 'FILE',
      help: 'a DERP map (tailcfg.DERPMap JSON) to give nodes',
      default: 'none',
    },
    'derp-port': {
      type: 'string',
      value: 'PORT',
      help: 'TCP port of the --derp relay',
      default: 'any free port',
    },
    policy: {
      type: 'string',
      value: 'FILE',
      help:
        'ACL policy JSON ({"acls": [{"action": "accept", "src": […], "dst": ["host:port"]}], "autoApprovers": {…}}); ' +
        'SIGHUP reloads it',
      default: 'allow all',
    },
    'base-domain': {
      type: 'string',
      value: 'DOMAIN',
      help: 'MagicDNS suffix of node names',
      default: 'tailnet.internal',
    },
    'server-url': {
      type: 'string',
      value: 'URL',
      help: 'base of the login URLs it hands out (e.g. behind 0.0.0.0 or a proxy)',
      default: 'http://HOST:PORT of --addr',
    },
    ...LIMIT_OPTIONS,
    'noise-timeout-ms': {
      type: 'string',
      value: 'MS',
      help: 'from the ts2021 upgrade to the first HTTP/2 request inside Noise',
      default: '10000',
    },
    'noise-idle-timeout-ms': {
      type: 'string',
      value: 'MS',
      help: 'close a Noise connection with no request open for this long',
      default: '60000',
    },
    'max-http2-streams': {
      type: 'string',
      value: 'N',
      help: 'requests open at once on one Noise connection',
      default: '100',
    },
    'max-body-bytes': {
      type: 'string',
      value: 'BYTES',
      help: 'largest request body inside Noise (413 beyond), as Headscale',
      default: '1048576',
    },
    'max-map-sessions-per-node': {
      type: 'string',
      value: 'N',
      help: 'streaming map requests one node may hold; another closes the oldest',
      default: '4',
    },
  },
  examples: [
    'quackscale control serve --addr 127.0.0.1:8080 --state-dir ./ctl --derp',
    'quackscale control serve --addr 0.0.0.0:8080 --state-dir ./ctl --derp-map derp.json --policy acl.json',
  ],
});

export const CONTROL_AUTHKEY = defineCommand({
  name: 'control authkey',
  summary: 'create a pre-auth key for nodes to join with (prints it)',
  usage: '--state-dir DIR [--reusable] [--ephemeral] [--tags tag:a,tag:b] [--ttl-hours N]',
  description: 'Writes the key into the server state directory; a running server accepts it at once.',
  options: {
    'state-dir': SERVER_STATE,
    reusable: { type: 'boolean', help: 'let any number of nodes join with it', default: 'one use' },
    ephemeral: { type: 'boolean', help: 'nodes that join with it are ephemeral' },
    tags: { type: 'string', value: 'TAGS', help: 'comma-separated ACL tags for nodes that join with it' },
    'ttl-hours': { type: 'string', value: 'N', help: 'hours until the key expires', default: '24' },
  },
  examples: ['KEY=$(quackscale control authkey --state-dir ./ctl --reusable)'],
});

export const CONTROL_APPROVE = defineCommand({
  name: 'control approve',
  summary: 'approve a waiting interactive login (through the running server)',
  usage: '--state-dir DIR [--user NAME] [--tags tag:a,tag:b] URL|ID',
  description:
    "Talks to the running server's admin API with the token in <state-dir>/admin.json: only who can " +
    'read the server state may approve.',
  args: LOGIN_ARG,
  options: {
    'state-dir': SERVER_STATE,
    user: {
      type: 'string',
      value: 'NAME',
      help: 'user the node belongs to (created if new)',
      default: 'quackscale',
    },
    tags: { type: 'string', value: 'TAGS', help: 'comma-separated ACL tags for the node' },
  },
  examples: ['quackscale control approve --state-dir ./ctl http://127.0.0.1:8080/register/Xq3…'],
});

export const CONTROL_REJECT = defineCommand({
  name: 'control reject',
  summary: 'reject a waiting interactive login (through the running server)',
  usage: '--state-dir DIR URL|ID',
  args: LOGIN_ARG,
  options: { 'state-dir': SERVER_STATE },
  examples: ['quackscale control reject --state-dir ./ctl http://127.0.0.1:8080/register/Xq3…'],
});

export const CONTROL_PENDING = defineCommand({
  name: 'control pending',
  summary: 'list the interactive logins waiting for approval',
  usage: '--state-dir DIR',
  description: 'One line each: login URL, state, hostname, expiry.',
  options: { 'state-dir': SERVER_STATE },
  examples: ['quackscale control pending --state-dir ./ctl'],
});

export const CONTROL_ROUTES = defineCommand({
  name: 'control routes',
  summary: 'list the routes nodes announce, which are approved, and which node is primary for each',
  usage: '--state-dir DIR [--json]',
  description:
    'One line per node that announces or has approved routes (through the running server). A subnet route ' +
    "is used only when approved (by `control approve-routes` or the policy's autoApprovers); among the " +
    'online nodes serving it one is primary, until it goes offline.',
  options: { 'state-dir': SERVER_STATE, json: { type: 'boolean', help: 'print JSON' } },
  examples: ['quackscale control routes --state-dir ./ctl'],
});

export const CONTROL_APPROVE_ROUTES = defineCommand({
  name: 'control approve-routes',
  summary: "set the routes a node may serve (replaces its approved list, as headscale's approve-routes)",
  usage: '--state-dir DIR --node ID|NAME --routes PREFIX[,PREFIX…]',
  description:
    'An empty --routes withdraws every approval. 0.0.0.0/0 and ::/0 (an exit node) go together. ' +
    "Prefixes that are not prefixes or overlap the tailnet's own ranges are refused.",
  options: {
    'state-dir': SERVER_STATE,
    node: { type: 'string', value: 'ID|NAME', help: 'the node (its id, or MagicDNS label)', required: true },
    routes: { type: 'string', value: 'PREFIXES', help: 'comma-separated prefixes', required: true },
  },
  examples: [
    'quackscale control approve-routes --state-dir ./ctl --node router1 --routes 192.168.1.0/24',
    'quackscale control approve-routes --state-dir ./ctl --node 3 --routes 0.0.0.0/0,::/0',
  ],
});

export const CONTROL_LOGIN = defineCommand({
  name: 'control login',
  summary: 'log a control client in and print its node from the first netmap',
  usage: '--server URL --state-dir DIR --hostname NAME [--authkey KEY] [--ephemeral]',
  description: 'Without an auth key it prints the login URL to approve and waits.',
  options: {
    server: {
      type: 'string',
      value: 'URL',
      help: 'control server URL (ours, Headscale or Tailscale)',
      required: true,
    },
    authkey: { type: 'string', value: 'KEY', help: 'pre-auth key', default: 'interactive login' },
    'state-dir': NODE_STATE,
    hostname: { type: 'string', value: 'NAME', help: 'node name', required: true },
    ephemeral: { type: 'boolean', help: 'register as ephemeral' },
  },
  examples: [
    'quackscale control login --server http://127.0.0.1:8080 --authkey "$KEY" --state-dir ./n1 --hostname n1',
  ],
});

export const CONTROL_NETMAP = defineCommand({
  name: 'control netmap',
  summary: 'print the netmap of a logged-in client: self and peers',
  usage: '--state-dir DIR [--json]',
  options: { 'state-dir': NODE_STATE, json: { type: 'boolean', help: 'print JSON' } },
  examples: ['quackscale control netmap --state-dir ./n1 --json'],
});

export const CONTROL_LOGOUT = defineCommand({
  name: 'control logout',
  summary: 'log a client out: control expires its node key',
  usage: '--state-dir DIR',
  options: { 'state-dir': NODE_STATE },
  examples: ['quackscale control logout --state-dir ./n1'],
});
