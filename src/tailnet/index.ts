/** `quackscale/tailnet`: a tailnet node for Node.js (Tailscale's tsnet), and the embedded local tailnet. */
export { type FilterRule, PacketFilter } from './filter.js';
export { type HttpProxy, type HttpProxyOptions, startHttpProxy } from './http-proxy.js';
export { ListenError, type LocalTailnet, type LocalTailnetOptions, startLocalTailnet } from './local.js';
export type { NodeMetrics } from './metrics/collect.js';
export { MetricsListenError, type MetricsServer, serveMetrics } from './metrics/listen.js';
export { type MetricFamily, type MetricSample, renderPrometheus } from './metrics/prometheus.js';
export { isTailnetAddress, NameResolver, UnknownHostError } from './names.js';
export { TailnetHttpAgent, TailnetHttpsAgent } from './net/agents.js';
export {
  createTailnetDispatcher,
  type TailnetDispatcherOptions,
  tailnetConnector,
} from './net/dispatcher.js';
export { type TailnetNames, tailnetLookup } from './net/lookup.js';
export { createTailnetNet, type TailnetNet, type TailnetNetOptions } from './net/net.js';
export { type RemoteLike, remoteAddressOf } from './net/remote-address.js';
export { TailnetServer, TailnetSocket, type TailnetSocketHost } from './net/socket.js';
export { type NetcheckOptions, runNetcheck } from './netcheck/netcheck.js';
export { formatNetcheck, type NetcheckReport } from './netcheck/report.js';
export { type PingReply, PingTimeoutError, type PingType } from './ping.js';
export { ExitNodeError, type RouteOptions } from './routes/node-routing.js';
export { RouteError } from './routes/prefixes.js';
export {
  SOCKS5_REPLY,
  type Socks5Destination,
  Socks5Server,
  type Socks5ServerOptions,
} from './socks5-server.js';
export { GO_ZERO_TIME, type IpnPeerStatus, type IpnStatus } from './status-json.js';
export {
  DEFAULT_CONTROL_URL,
  type PeerStatus,
  Tailnet,
  type TailnetOptions,
  type TailnetStatus,
} from './tailnet.js';
