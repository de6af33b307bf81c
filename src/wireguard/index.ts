/** `quackscale/wireguard`: a WireGuard implementation for Node.js (keys, handshake, device, config). */
export { type AeadEngineName, transportAead } from './aead.js';
export { AllowedIPs, type CidrInput, canonicalCidr } from './allowedips.js';
export { type Bind, type Endpoint, MemoryBind, NamedEndpoint } from './bind.js';
export { BunUdpBind, hasBunUdp, openUdpBind } from './bun-udp-bind.js';
export { type Clock, FakeClock, scaledClock, systemClock } from './clock.js';
export {
  ConfigError,
  formatConfig,
  parseConfig,
  readConfig,
  type WgConfig,
  type WgInterfaceConfig,
  type WgPeerConfig,
} from './config.js';
export * as constants from './constants.js';
export {
  Device,
  type DeviceOptions,
  type DeviceStats,
  type DeviceStatus,
  type HandshakeEvent,
  type PeerConfiguredEvent,
  type PeerOptions,
} from './device.js';
export { WireGuardError, type WireGuardErrorCode } from './errors.js';
export {
  generatePrivateKey,
  keyFromBase64,
  keysEqual,
  keyToBase64,
  keyToHex,
  publicKeyFromPrivate,
} from './keys.js';
export { type Logger, silentLogger } from './logger.js';
export { type OpenDeviceOptions, openDevice } from './open.js';
export type { Peer, PeerStatus } from './peer.js';
export { CryptoPool, CryptoPoolError } from './pool/crypto-pool.js';
export { parseEndpoint, resolveEndpoint, UdpBind, type UdpBindOptions, UdpEndpoint } from './udp-bind.js';
