/**
 * Disco: Tailscale's path-discovery messages, sent on the same UDP socket as WireGuard and
 * inside DERP packets (`disco/disco.go`, `wgengine/magicsock/magicsock.go` sendDiscoMessage).
 * A packet is `TS💬` (6 bytes), the sender's disco public key (32), then a NaCl box
 * (24-byte nonce, then XSalsa20-Poly1305 of the message) from sender to receiver. A message
 * is a type byte, a version byte (0) and a payload.
 */
import nacl from 'tweetnacl';
import { formatIp, ipv4ToMapped, parseIp, unmapIPv4 } from '../netstack/address.js';

export const DISCO_MAGIC = new Uint8Array([0x54, 0x53, 0xf0, 0x9f, 0x92, 0xac]);
const KEY_LEN = 32;
const NONCE_LEN = 24;
const HEADER_LEN = DISCO_MAGIC.length + KEY_LEN;
const TXID_LEN = 12;
/** 16-byte IP (IPv4 mapped into IPv6) + 2-byte big-endian port. */
const ENDPOINT_LEN = 18;

/**
 * MtuProbe and MtuAck are quackscale's own (path MTU discovery between our nodes, pmtu.ts), far
 * from Tailscale's types (0x01–0x09 today): tailscaled's disco.Parse rejects an unknown type and
 * magicsock drops the message, so only our nodes answer probes.
 */
export const DiscoType = { Ping: 0x01, Pong: 0x02, CallMeMaybe: 0x03, MtuProbe: 0x71, MtuAck: 0x72 } as const;

/** Bytes of a sealed MtuProbe besides its padding: header, nonce, box tag, type+version, txid. */
const PROBE_FIXED = HEADER_LEN + NONCE_LEN + nacl.box.overheadLength + 2 + TXID_LEN;

/** The padding that makes a sealed MtuProbe exactly `size` bytes long. */
export function mtuProbePadding(size: number): number {
  if (size < PROBE_FIXED) throw new RangeError(`an MTU probe cannot be ${size} bytes`);
  return size - PROBE_FIXED;
}

/** A UDP address as disco carries it. */
export interface AddrPort {
  /** Dotted IPv4 or IPv6 text. */
  ip: string;
  port: number;
}

export type DiscoMessage =
  | { type: 'ping'; txid: Uint8Array; nodeKey?: Uint8Array; padding: number }
  | { type: 'pong'; txid: Uint8Array; src: AddrPort }
  | { type: 'callMeMaybe'; endpoints: AddrPort[] }
  /** A path MTU probe: the sealed packet is padded to the size probed. */
  | { type: 'mtuProbe'; txid: Uint8Array; padding: number }
  /** A probe arrived: `size` is the length of the sealed packet as received. */
  | { type: 'mtuAck'; txid: Uint8Array; size: number };

/** A disco key pair (Curve25519, as NaCl box keys). */
export interface DiscoKeyPair {
  publicKey: Uint8Array;
  secretKey: Uint8Array;
}

export function generateDiscoKey(): DiscoKeyPair {
  return nacl.box.keyPair();
}

/** True if `p` starts like a disco packet (WireGuard messages start with 1–4, never 0x54). */
export function looksLikeDisco(p: Uint8Array): boolean {
  if (p.length < HEADER_LEN + NONCE_LEN) return false;
  for (let i = 0; i < DISCO_MAGIC.length; i++) if (p[i] !== DISCO_MAGIC[i]) return false;
  return true;
}

/** The sender's disco public key of a packet that {@link looksLikeDisco}. */
export function discoSender(p: Uint8Array): Uint8Array {
  return p.slice(DISCO_MAGIC.length, HEADER_LEN);
}

/** Precomputed NaCl box key between us and one peer's disco key (`key.DiscoShared`). */
export function discoShared(ours: DiscoKeyPair, theirPublic: Uint8Array): Uint8Array {
  return nacl.box.before(theirPublic, ours.secretKey);
}

/** Seals `msg` into a disco packet from `ours` with the precomputed `shared` key. */
export function sealDisco(ours: DiscoKeyPair, shared: Uint8Array, msg: DiscoMessage): Uint8Array {
  const clear = encodeMessage(msg);
  const nonce = nacl.randomBytes(NONCE_LEN);
  const box = nacl.box.after(clear, nonce, shared);
  const out = new Uint8Array(HEADER_LEN + NONCE_LEN + box.length);
  out.set(DISCO_MAGIC, 0);
  out.set(ours.publicKey, DISCO_MAGIC.length);
  out.set(nonce, HEADER_LEN);
  out.set(box, HEADER_LEN + NONCE_LEN);
  return out;
}

/** Opens a disco packet; undefined if it does not authenticate or does not parse. */
export function openDisco(shared: Uint8Array, packet: Uint8Array): DiscoMessage | undefined {
  if (!looksLikeDisco(packet)) return undefined;
  const nonce = packet.subarray(HEADER_LEN, HEADER_LEN + NONCE_LEN);
  const clear = nacl.box.open.after(packet.subarray(HEADER_LEN + NONCE_LEN), nonce, shared);
  return clear ? parseMessage(clear) : undefined;
}

export function encodeMessage(msg: DiscoMessage): Uint8Array {
  switch (msg.type) {
    case 'ping': {
      const keyLen = msg.nodeKey ? KEY_LEN : 0;
      const out = new Uint8Array(2 + TXID_LEN + keyLen + msg.padding);
      out[0] = DiscoType.Ping;
      out.set(msg.txid, 2);
      if (msg.nodeKey) out.set(msg.nodeKey, 2 + TXID_LEN);
      return out;
    }
    case 'pong': {
      const out = new Uint8Array(2 + TXID_LEN + ENDPOINT_LEN);
      out[0] = DiscoType.Pong;
      out.set(msg.txid, 2);
      writeAddrPort(out, 2 + TXID_LEN, msg.src);
      return out;
    }
    case 'mtuProbe': {
      const out = new Uint8Array(2 + TXID_LEN + msg.padding);
      out[0] = DiscoType.MtuProbe;
      out.set(msg.txid, 2);
      return out;
    }
    case 'mtuAck': {
      const out = new Uint8Array(2 + TXID_LEN + 4);
      out[0] = DiscoType.MtuAck;
      out.set(msg.txid, 2);
      new DataView(out.buffer).setUint32(2 + TXID_LEN, msg.size);
      return out;
    }
    case 'callMeMaybe': {
      const out = new Uint8Array(2 + ENDPOINT_LEN * msg.endpoints.length);
      out[0] = DiscoType.CallMeMaybe;
      for (const [i, e] of msg.endpoints.entries()) writeAddrPort(out, 2 + i * ENDPOINT_LEN, e);
      return out;
    }
  }
}

/** Parses a decrypted message; unknown types (peer-relay messages 0x04–0x09) give undefined. */
export function parseMessage(p: Uint8Array): DiscoMessage | undefined {
  if (p.length < 2) return undefined;
  const body = p.subarray(2);
  switch (p[0]) {
    case DiscoType.Ping: {
      if (body.length < TXID_LEN) return undefined;
      const hasKey = body.length >= TXID_LEN + KEY_LEN;
      return {
        type: 'ping',
        txid: body.slice(0, TXID_LEN),
        ...(hasKey ? { nodeKey: body.slice(TXID_LEN, TXID_LEN + KEY_LEN) } : {}),
        padding: body.length - TXID_LEN - (hasKey ? KEY_LEN : 0),
      };
    }
    case DiscoType.Pong:
      if (body.length < TXID_LEN + ENDPOINT_LEN) return undefined;
      return { type: 'pong', txid: body.slice(0, TXID_LEN), src: readAddrPort(body, TXID_LEN) };
    case DiscoType.MtuProbe:
      if (body.length < TXID_LEN) return undefined;
      return { type: 'mtuProbe', txid: body.slice(0, TXID_LEN), padding: body.length - TXID_LEN };
    case DiscoType.MtuAck:
      if (body.length < TXID_LEN + 4) return undefined;
      return {
        type: 'mtuAck',
        txid: body.slice(0, TXID_LEN),
        size: new DataView(body.buffer, body.byteOffset + TXID_LEN, 4).getUint32(0),
      };
    case DiscoType.CallMeMaybe: {
      // disco.go: a bad length or version gives an empty list, not an error.
      if (p[1] !== 0 || body.length === 0 || body.length % ENDPOINT_LEN !== 0)
        return { type: 'callMeMaybe', endpoints: [] };
      const endpoints: AddrPort[] = [];
      for (let off = 0; off < body.length; off += ENDPOINT_LEN) endpoints.push(readAddrPort(body, off));
      return { type: 'callMeMaybe', endpoints };
    }
    default:
      return undefined;
  }
}

function writeAddrPort(out: Uint8Array, off: number, a: AddrPort): void {
  const ip = parseIp(a.ip);
  out.set(ip.length === 4 ? ipv4ToMapped(ip) : ip, off);
  out[off + 16] = a.port >> 8;
  out[off + 17] = a.port & 0xff;
}

/** IPv4 travels mapped into IPv6 and comes back as IPv4 (disco.go parsePong: Unmap). */
function readAddrPort(p: Uint8Array, off: number): AddrPort {
  return { ip: formatIp(unmapIPv4(p.subarray(off, off + 16))), port: (p[off + 16]! << 8) | p[off + 17]! };
}
