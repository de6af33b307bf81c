/** What a {@link Device} is given and reports: its options, a peer's, its status and counters. */
import type { AeadEngineName } from './aead.js';
import type { Bind, Endpoint } from './bind.js';
import type { Clock } from './clock.js';
import type { Logger } from './logger.js';
import type { PeerStatus } from './peer.js';

export interface DeviceOptions {
  /** Our static private key (32 bytes). */
  privateKey: Uint8Array;
  /** Moves datagrams: {@link UdpBind}, a DERP bind, or {@link MemoryBind} in tests. */
  bind: Bind;
  /** Largest inner IP packet (default 1420, as wg-quick). */
  mtu?: number;
  /**
   * Largest inner IP packet toward a peer whose path the bind has proved larger ({@link Bind.mtuTo});
   * default {@link mtu}. Toward every other peer packets stay within `mtu`.
   */
  maxMtu?: number;
  clock?: Clock;
  /**
   * Transport AEAD engine: `'wasm'` (default; WebAssembly SIMD, 2–4× node:crypto per packet
   * here), `'node'` (node:crypto) or `'noble'`. Each falls back to the next where unavailable.
   */
  aead?: AeadEngineName;
  /**
   * Worker threads that seal and open transport messages (wasm engine, whatever `aead` says)
   * while this thread runs the stack and the sockets; default 0: this thread does it all. Worth
   * it where cores are to spare: on a 2-core machine running both ends it costs more CPU per GB
   * than it saves (docs/INTERNALS.md, "Crypto workers"). Ignored, with a warning, where the
   * runtime lacks SharedArrayBuffer or Atomics.waitAsync. With workers, packets are sent after
   * `writePacket`/`endBurst` return, so a bind's send error goes to `logger.warn`, not to them.
   */
  cryptoWorkers?: number;
  logger?: Logger;
  /**
   * Whether a peer's endpoint follows its authenticated packets (§2, default true). A bind
   * that chooses paths itself (magicsock: one endpoint per peer, over UDP or DERP) turns it
   * off; the endpoint is then learned only while the peer has none.
   */
  roaming?: boolean;
}

export interface PeerOptions {
  publicKey: Uint8Array;
  presharedKey?: Uint8Array;
  endpoint?: Endpoint;
  /** CIDRs this peer may use as source and receives for as destination. */
  allowedIPs?: string[];
  /** Seconds between keepalives when idle; 0 or absent = off. */
  persistentKeepalive?: number;
}

/** What `wg show` shows. */
export interface DeviceStatus {
  publicKey: string;
  peers: PeerStatus[];
}

/** Device-wide counters of dropped and processed traffic. */
export interface DeviceStats {
  invalidMessages: number;
  noRoute: number;
  unknownIndex: number;
  expiredKeypair: number;
  decryptFailed: number;
  replayed: number;
  disallowedSource: number;
  malformedInner: number;
  handshakeQueueDrops: number;
  badMac1: number;
  cookiesSent: number;
  rateLimited: number;
  staleInitiations: number;
  handshakeErrors: number;
  /** Handshakes completed, as initiator or responder. */
  handshakesCompleted: number;
  /** Initiations sent, retries included. */
  handshakeInitiationsSent: number;
  /** Times a peer gave up after MAX_TIMER_HANDSHAKES retries without an answer (§6.4). */
  handshakeTimeouts: number;
  /** Outbound packets larger than the MTU toward their peer, dropped. */
  tooBig: number;
}

/** Emitted as `'handshake'` whenever a session is established with a peer. */
export interface HandshakeEvent {
  peer: string;
  initiator: boolean;
  endpoint: string | undefined;
}

/** Every counter at zero. */
export function newDeviceStats(): DeviceStats {
  return {
    invalidMessages: 0,
    noRoute: 0,
    unknownIndex: 0,
    expiredKeypair: 0,
    decryptFailed: 0,
    replayed: 0,
    disallowedSource: 0,
    malformedInner: 0,
    handshakeQueueDrops: 0,
    badMac1: 0,
    cookiesSent: 0,
    rateLimited: 0,
    staleInitiations: 0,
    handshakeErrors: 0,
    handshakesCompleted: 0,
    handshakeInitiationsSent: 0,
    handshakeTimeouts: 0,
    tooBig: 0,
  };
}
