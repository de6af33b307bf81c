/**
 * quackscale/control: the ts2021 control client (login, map stream, netmap) and the embedded
 * control server. Knows nothing of packets; tailnet/ composes it with the engine layers.
 */
export { Backoff, type BackoffOptions } from './backoff.js';
export { ControlClient, type ControlClientEvents, type ControlClientOptions } from './client.js';
export {
  decodeMapRequest,
  decodeMapResponse,
  decodeRegisterRequest,
  decodeRegisterResponse,
} from './decode.js';
export { dialNoise, fetchServerKey, parseKeyResponse } from './dial.js';
export {
  AuthKeyRejectedError,
  ClosedError,
  ControlError,
  isRetryable,
  NodeExpiredError,
  NotLoggedInError,
  ProtocolError,
  ServerUnreachableError,
  StateError,
  WrongProtocolError,
} from './errors.js';
export { makeHostinfo } from './hostinfo.js';
export {
  type DiscoPrivate,
  type DiscoPublic,
  type KeyKind,
  KeyParseError,
  type MachinePrivate,
  type MachinePublic,
  type NodePrivate,
  type NodePublic,
  PrivateKey,
  PublicKey,
} from './keys.js';
export type { ControlLogger } from './logger.js';
export type { LoginResult } from './login.js';
export { encodeMapMessage, MapMessageReader, messageText } from './mapstream.js';
export {
  applyMapResponse,
  findPeer,
  type NetMap,
  type NetMapChange,
  type NetNode,
  toNetNode,
} from './netmap.js';
export { NoiseConn } from './noise/conn.js';
export { type EarlyNoise, EarlyPayloadParser, encodeEarlyPayload } from './noise/early.js';
export { FrameReader } from './noise/frames.js';
export { clientInitiation, serverAccept, type TransportKeys } from './noise/handshake.js';
export { AdminAPIError, adminRequest } from './server/admin.js';
export { AuthKeyStore, type NewAuthKeyOptions } from './server/authkeys.js';
export type { ApprovedNode, ApproveOptions, PendingView } from './server/interactive.js';
export { PendingRegistrationError } from './server/pending.js';
export { type AclPolicy, type AclRule, compileFilter, PolicyError } from './server/policy.js';
export { type AutoApprovers, type NodeRoutes, RouteApprovalError } from './server/routes.js';
export { UnknownNodeError } from './server/routes-http.js';
export { ControlServer, type ControlServerOptions } from './server/server.js';
export { type ControlState, type LoginInfo, StateDir } from './state.js';
export type * as tailcfg from './tailcfg.js';
export { Ts2021Transport } from './transport.js';
export { CAPABILITY_VERSION } from './version.js';
export { zstdStore, zstdUnstore } from './zstd.js';
