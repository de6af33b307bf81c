/**
 * The ts2021 handshake: Noise_IK_25519_ChaChaPoly_BLAKE2s with the prologue
 * "Tailscale Control Protocol v<N>" mixed in as the first hash input, empty payloads, the
 * control server's machine key as the responder static (control/controlbase/handshake.go).
 * The client sends its initiation in the HTTP upgrade request, so initiation and completion
 * are separate steps, like Go's ClientDeferred.
 */
import { ProtocolError } from '../errors.js';
import { type MachinePrivate, type MachinePublic, PrivateKey, PublicKey } from '../keys.js';
import { hash, hkdf2, nonceFor, open, seal } from './crypto.js';
import {
  HEADER_LEN,
  INITIATION_HEADER_LEN,
  INITIATION_LEN,
  MSG_INITIATION,
  MSG_RESPONSE,
  RESPONSE_LEN,
} from './frames.js';

const PROTOCOL_NAME = 'Noise_IK_25519_ChaChaPoly_BLAKE2s';
const PROLOGUE_PREFIX = 'Tailscale Control Protocol v';
const ZERO_NONCE = nonceFor(0n);

/** The two transport keys after Split(): the initiator sends with c1, the responder with c2. */
export interface TransportKeys {
  send: Uint8Array;
  receive: Uint8Array;
  /** The final handshake hash (channel binding). */
  handshakeHash: Uint8Array;
}

class SymmetricState {
  h: Uint8Array;
  ck: Uint8Array;
  constructor() {
    this.h = hash(Buffer.from(PROTOCOL_NAME));
    this.ck = this.h;
  }
  mixHash(data: Uint8Array): void {
    this.h = hash(this.h, data);
  }
  /** Mixes DH(priv, pub) into the chaining key; returns the one-use cipher key. */
  mixDH(priv: MachinePrivate, pub: MachinePublic, what: string): Uint8Array {
    let dh: Uint8Array;
    try {
      dh = priv.sharedSecret(pub);
    } catch (err) {
      throw new ProtocolError(`Noise handshake: computing ${what} failed (low-order public key)`, {
        cause: err,
      });
    }
    const [ck, k] = hkdf2(this.ck, dh);
    this.ck = ck;
    return k;
  }
  encryptAndHash(key: Uint8Array, plaintext: Uint8Array): Buffer {
    const ct = seal(key, ZERO_NONCE, plaintext, this.h);
    this.mixHash(ct);
    return ct;
  }
  decryptAndHash(key: Uint8Array, ciphertext: Uint8Array, what: string): Buffer {
    const pt = open(key, ZERO_NONCE, ciphertext, this.h);
    if (pt === undefined) throw new ProtocolError(`Noise handshake: ${what} did not decrypt`);
    this.mixHash(ciphertext);
    return pt;
  }
  split(): [Uint8Array, Uint8Array] {
    return hkdf2(this.ck, new Uint8Array(0));
  }
}

function prologue(version: number): Buffer {
  return Buffer.from(PROLOGUE_PREFIX + String(version));
}

/** A client handshake in flight: the initiation to send and a way to finish it. */
export interface ClientHandshake {
  readonly initiation: Buffer;
  /** Consumes the server's 51-byte response; throws ProtocolError if it does not verify. */
  finish(response: Uint8Array): TransportKeys;
}

/** Builds the initiation (Go's ClientDeferred). */
export function clientInitiation(
  machineKey: MachinePrivate,
  controlKey: MachinePublic,
  protocolVersion: number,
): ClientHandshake {
  const s = new SymmetricState();
  s.mixHash(prologue(protocolVersion));
  s.mixHash(controlKey.raw);
  const ephemeral = PrivateKey.generate('machine');
  const init = Buffer.alloc(INITIATION_LEN);
  init.writeUInt16BE(protocolVersion, 0);
  init[2] = MSG_INITIATION;
  init.writeUInt16BE(INITIATION_LEN - INITIATION_HEADER_LEN, 3);
  init.set(ephemeral.publicKey.raw, 5);
  s.mixHash(ephemeral.publicKey.raw);
  let k = s.mixDH(ephemeral, controlKey, 'es');
  init.set(s.encryptAndHash(k, machineKey.publicKey.raw), 37);
  k = s.mixDH(machineKey, controlKey, 'ss');
  init.set(s.encryptAndHash(k, new Uint8Array(0)), 85);
  let done = false;
  return {
    initiation: init,
    finish(response: Uint8Array): TransportKeys {
      if (done) throw new ProtocolError('Noise handshake: response already consumed');
      done = true;
      if (response.length !== RESPONSE_LEN || response[0] !== MSG_RESPONSE) {
        throw new ProtocolError(
          `Noise handshake: malformed response (${response.length} bytes, type ${response[0]})`,
        );
      }
      if (((response[1]! << 8) | response[2]!) !== RESPONSE_LEN - HEADER_LEN) {
        throw new ProtocolError('Noise handshake: wrong length in response header');
      }
      const controlEphemeral = PublicKey.fromRaw('machine', response.subarray(3, 35));
      s.mixHash(controlEphemeral.raw);
      s.mixDH(ephemeral, controlEphemeral, 'ee');
      const k2 = s.mixDH(machineKey, controlEphemeral, 'se');
      s.decryptAndHash(k2, response.subarray(35, 51), 'response payload');
      const [c1, c2] = s.split();
      return { send: c1, receive: c2, handshakeHash: s.h };
    },
  };
}

/** What the server learns from a valid initiation, and the response to send back. */
export interface ServerHandshake {
  readonly clientVersion: number;
  readonly clientMachineKey: MachinePublic;
  readonly response: Buffer;
  readonly keys: TransportKeys;
}

/** Reads the version from an initiation without verifying anything else. */
export function initiationVersion(init: Uint8Array): number {
  if (init.length < 2) throw new ProtocolError('Noise initiation too short');
  return (init[0]! << 8) | init[1]!;
}

/** Validates an initiation and builds the response (Go's controlbase.Server). */
export function serverAccept(controlKey: MachinePrivate, init: Uint8Array): ServerHandshake {
  if (init.length !== INITIATION_LEN) throw new ProtocolError('wrong handshake initiation size');
  if (init[2] !== MSG_INITIATION) throw new ProtocolError('unexpected handshake message type');
  if (((init[3]! << 8) | init[4]!) !== INITIATION_LEN - INITIATION_HEADER_LEN) {
    throw new ProtocolError('wrong handshake initiation length');
  }
  const version = initiationVersion(init);
  const s = new SymmetricState();
  s.mixHash(prologue(version));
  s.mixHash(controlKey.publicKey.raw);
  const clientEphemeral = PublicKey.fromRaw('machine', init.subarray(5, 37));
  s.mixHash(clientEphemeral.raw);
  let k = s.mixDH(controlKey, clientEphemeral, 'es');
  const machineRaw = s.decryptAndHash(k, init.subarray(37, 85), 'machine key');
  const clientMachineKey = PublicKey.fromRaw('machine', machineRaw);
  k = s.mixDH(controlKey, clientMachineKey, 'ss');
  s.decryptAndHash(k, init.subarray(85, 101), 'initiation tag');

  const ephemeral = PrivateKey.generate('machine');
  const response = Buffer.alloc(RESPONSE_LEN);
  response[0] = MSG_RESPONSE;
  response.writeUInt16BE(RESPONSE_LEN - HEADER_LEN, 1);
  response.set(ephemeral.publicKey.raw, 3);
  s.mixHash(ephemeral.publicKey.raw);
  s.mixDH(ephemeral, clientEphemeral, 'ee');
  k = s.mixDH(ephemeral, clientMachineKey, 'se');
  response.set(s.encryptAndHash(k, new Uint8Array(0)), 35);
  const [c1, c2] = s.split();
  return {
    clientVersion: version,
    clientMachineKey,
    response,
    keys: { send: c2, receive: c1, handshakeHash: s.h },
  };
}
