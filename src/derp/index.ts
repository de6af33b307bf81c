/**
 * quackscale/derp: the DERP relay protocol: frame codec, client (HTTP upgrade over TCP/TLS,
 * WebSocket), per-node connection manager, a WireGuard Bind over DERP, the relay server with
 * its HTTP endpoints, and a STUN responder.
 */
export { Backoff } from './backoff.js';
export { DerpBind, type DerpBindOptions, DerpEndpoint } from './bind.js';
export { DerpClient, type DerpClientOptions } from './client.js';
export * from './constants.js';
export {
  type DerpMap,
  type DerpNode,
  type DerpRegion,
  type NodeTarget,
  nodeTarget,
  parseDerpMap,
  regionIds,
  stunTarget,
} from './derpmap.js';
export { type DerpTlsOptions, type Dialed, type DialOptions, dialDerp } from './dial.js';
export { DerpError, type DerpErrorCode } from './errors.js';
export { encodeFrame, FrameReader, frameName, writeFrameHeader } from './frame.js';
export { DerpHttpServer, type DerpHttpServerOptions } from './http-server.js';
export {
  fingerprint,
  generateNodeKeyPair,
  keyFromHex,
  keyToHex,
  NaclBox,
  type NodeKeyPair,
  nodePublicKey,
} from './keys.js';
export { choosePreferredRegion, httpLatency, measureRegionLatency } from './latency.js';
export { type DerpLogger, silentDerpLogger } from './logger.js';
export { DerpClientManager, type DerpClientManagerOptions } from './manager.js';
export * from './messages.js';
export {
  certNameOf,
  createSelfSignedCertificate,
  loadOrCreateCertificate,
  type PinnedCertificate,
} from './self-signed.js';
export { DerpServer, type DerpServerOptions } from './server.js';
export { type DropReason, ServerMetrics } from './server-metrics.js';
export {
  isStun,
  parseBindingRequest,
  parseStunResponse,
  StunServer,
  stunQuery,
  stunRequest,
  stunResponse,
} from './stun.js';
export { type DerpConn, SocketConn, WebSocketConn } from './transport.js';
