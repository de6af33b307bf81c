/**
 * The Noise_IKpsk2 handshake (WireGuard paper §5.4.2–§5.4.5, wireguard-go
 * `device/noise-protocol.go`). Functions here build and consume handshake messages and
 * derive transport keys; they know nothing of sockets, timers or peers' endpoints.
 */
import {
  CONSTRUCTION,
  IDENTIFIER,
  KEY_SIZE,
  MESSAGE_INITIATION,
  MESSAGE_INITIATION_SIZE,
  MESSAGE_RESPONSE,
  MESSAGE_RESPONSE_SIZE,
  TAG_SIZE,
  TIMESTAMP_SIZE,
} from './constants.js';
import { aeadOpen, aeadSeal, dh, generateKeyPair, hash, kdf, tai64n } from './crypto.js';
import { WireGuardError } from './errors.js';
import { expectType, Initiation, newMessage, Response, readU32, writeU32 } from './messages.js';

const enc = new TextEncoder();
const EMPTY = new Uint8Array(0);
const ZERO_KEY = new Uint8Array(KEY_SIZE);

/** C_i = HASH(CONSTRUCTION), H_i = HASH(C_i || IDENTIFIER): the same for every handshake. */
const INITIAL_CHAIN_KEY = hash(enc.encode(CONSTRUCTION));
const INITIAL_HASH = hash(INITIAL_CHAIN_KEY, enc.encode(IDENTIFIER));

/** Our static identity as the handshake needs it. */
export interface StaticIdentity {
  privateKey: Uint8Array;
  publicKey: Uint8Array;
}

/** What the handshake knows about one remote peer. */
export interface PeerIdentity {
  publicKey: Uint8Array;
  /** DH(our static, their static), precomputed once per peer (wireguard-go precomputedStaticStatic). */
  staticStatic: Uint8Array;
  presharedKey: Uint8Array;
}

/** An initiation we sent and await a response for. */
export interface PendingInitiation {
  localIndex: number;
  chainKey: Uint8Array;
  hash: Uint8Array;
  ephemeralPrivate: Uint8Array;
}

/** Transport keys and indices produced by a completed handshake. */
export interface SessionKeys {
  sendKey: Uint8Array;
  receiveKey: Uint8Array;
  localIndex: number;
  remoteIndex: number;
  isInitiator: boolean;
}

function mixHash(h: Uint8Array, data: Uint8Array): Uint8Array {
  return hash(h, data);
}

/**
 * Builds a handshake initiation (§5.4.2) without MACs; the caller adds mac1/mac2
 * (cookie.ts). Returns the message and the state needed to consume the response.
 */
export function createInitiation(
  self: StaticIdentity,
  peer: PeerIdentity,
  localIndex: number,
  wallMs: number,
): { message: Uint8Array; pending: PendingInitiation } {
  const msg = newMessage(MESSAGE_INITIATION, MESSAGE_INITIATION_SIZE);
  writeU32(msg, Initiation.sender, localIndex);

  let h = mixHash(INITIAL_HASH, peer.publicKey);
  const eph = generateKeyPair();
  let [c] = kdf(1, INITIAL_CHAIN_KEY, eph.publicKey);
  msg.set(eph.publicKey, Initiation.ephemeral);
  h = mixHash(h, eph.publicKey);

  let k: Uint8Array;
  [c, k] = kdf(2, c, dh(eph.privateKey, peer.publicKey));
  const encStatic = aeadSeal(k, 0, self.publicKey, h);
  msg.set(encStatic, Initiation.static);
  h = mixHash(h, encStatic);

  [c, k] = kdf(2, c, peer.staticStatic);
  const encTimestamp = aeadSeal(k, 0, tai64n(wallMs), h);
  msg.set(encTimestamp, Initiation.timestamp);
  h = mixHash(h, encTimestamp);

  return { message: msg, pending: { localIndex, chainKey: c, hash: h, ephemeralPrivate: eph.privateKey } };
}

/** What a responder learns from a valid initiation before it decides to answer. */
export interface ConsumedInitiation {
  peerPublicKey: Uint8Array;
  remoteIndex: number;
  remoteEphemeral: Uint8Array;
  timestamp: Uint8Array;
  chainKey: Uint8Array;
  hash: Uint8Array;
}

/**
 * Consumes an initiation (§5.4.2, responder side). `lookupPeer` maps the decrypted static
 * key to a known peer; an unknown key throws UNKNOWN_PEER. MACs must be checked first.
 */
export function consumeInitiation(
  self: StaticIdentity,
  msg: Uint8Array,
  lookupPeer: (publicKey: Uint8Array) => PeerIdentity | undefined,
): { consumed: ConsumedInitiation; peer: PeerIdentity } {
  expectType(msg, MESSAGE_INITIATION);
  const remoteEphemeral = msg.slice(Initiation.ephemeral, Initiation.ephemeral + KEY_SIZE);

  let h = mixHash(INITIAL_HASH, self.publicKey);
  let [c] = kdf(1, INITIAL_CHAIN_KEY, remoteEphemeral);
  h = mixHash(h, remoteEphemeral);

  let k: Uint8Array;
  [c, k] = kdf(2, c, dh(self.privateKey, remoteEphemeral));
  const encStatic = msg.subarray(Initiation.static, Initiation.static + KEY_SIZE + TAG_SIZE);
  const peerPublicKey = aeadOpen(k, 0, encStatic, h);
  h = mixHash(h, encStatic);

  const peer = lookupPeer(peerPublicKey);
  if (!peer)
    throw new WireGuardError('UNKNOWN_PEER', 'initiation from a public key that is not a configured peer');

  [c, k] = kdf(2, c, peer.staticStatic);
  const encTimestamp = msg.subarray(Initiation.timestamp, Initiation.timestamp + TIMESTAMP_SIZE + TAG_SIZE);
  const timestamp = aeadOpen(k, 0, encTimestamp, h);
  h = mixHash(h, encTimestamp);

  return {
    consumed: {
      peerPublicKey,
      remoteIndex: readU32(msg, Initiation.sender),
      remoteEphemeral,
      timestamp,
      chainKey: c,
      hash: h,
    },
    peer,
  };
}

/**
 * Builds the response to a consumed initiation (§5.4.3) without MACs, and derives the
 * responder's transport keys (§5.4.5).
 */
export function createResponse(
  peer: PeerIdentity,
  init: ConsumedInitiation,
  localIndex: number,
): { message: Uint8Array; keys: SessionKeys } {
  const msg = newMessage(MESSAGE_RESPONSE, MESSAGE_RESPONSE_SIZE);
  writeU32(msg, Response.sender, localIndex);
  writeU32(msg, Response.receiver, init.remoteIndex);

  const eph = generateKeyPair();
  let [c] = kdf(1, init.chainKey, eph.publicKey);
  msg.set(eph.publicKey, Response.ephemeral);
  let h = mixHash(init.hash, eph.publicKey);
  [c] = kdf(1, c, dh(eph.privateKey, init.remoteEphemeral));
  [c] = kdf(1, c, dh(eph.privateKey, peer.publicKey));
  const [c2, tau, k] = kdf(3, c, peer.presharedKey);
  h = mixHash(h, tau);
  const encEmpty = aeadSeal(k, 0, EMPTY, h);
  msg.set(encEmpty, Response.empty);

  const [receiveKey, sendKey] = kdf(2, c2, EMPTY);
  eph.privateKey.fill(0);
  return {
    message: msg,
    keys: { sendKey, receiveKey, localIndex, remoteIndex: init.remoteIndex, isInitiator: false },
  };
}

/**
 * Consumes a response to our pending initiation (§5.4.3, initiator side) and derives the
 * initiator's transport keys. Throws DECRYPT_FAILED if it does not authenticate.
 */
export function consumeResponse(
  self: StaticIdentity,
  peer: PeerIdentity,
  pending: PendingInitiation,
  msg: Uint8Array,
): SessionKeys {
  expectType(msg, MESSAGE_RESPONSE);
  const remoteEphemeral = msg.subarray(Response.ephemeral, Response.ephemeral + KEY_SIZE);
  let [c] = kdf(1, pending.chainKey, remoteEphemeral);
  let h = mixHash(pending.hash, remoteEphemeral);
  [c] = kdf(1, c, dh(pending.ephemeralPrivate, remoteEphemeral));
  [c] = kdf(1, c, dh(self.privateKey, remoteEphemeral));
  const [c2, tau, k] = kdf(3, c, peer.presharedKey);
  h = mixHash(h, tau);
  aeadOpen(k, 0, msg.subarray(Response.empty, Response.empty + TAG_SIZE), h);

  const [sendKey, receiveKey] = kdf(2, c2, EMPTY);
  return {
    sendKey,
    receiveKey,
    localIndex: pending.localIndex,
    remoteIndex: readU32(msg, Response.sender),
    isInitiator: true,
  };
}

/** Precomputes what the handshake needs about a peer. `presharedKey` defaults to zeros (§5.2). */
export function peerIdentity(
  self: StaticIdentity,
  publicKey: Uint8Array,
  presharedKey?: Uint8Array,
): PeerIdentity {
  return {
    publicKey: publicKey.slice(),
    staticStatic: dh(self.privateKey, publicKey),
    presharedKey: presharedKey ? presharedKey.slice() : ZERO_KEY,
  };
}
