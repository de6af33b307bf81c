/**
 * MAC1, MAC2 and cookie replies: WireGuard's DoS mitigation (paper §5.3 and §5.4.4,
 * §5.4.7; wireguard-go `device/cookie.go`). MAC1 proves the sender knows our public key;
 * under load, MAC2 proves it can receive at its source address, because the cookie it is
 * keyed with was sent there encrypted.
 */

import type { Clock } from './clock.js';
import {
  COOKIE_NONCE_SIZE,
  COOKIE_REFRESH_TIME,
  LABEL_COOKIE,
  LABEL_MAC1,
  MESSAGE_COOKIE_REPLY,
  MESSAGE_COOKIE_REPLY_SIZE,
  REKEY_TIMEOUT,
} from './constants.js';
import { constantTimeEqual, hash, mac, randomBytes, xaeadOpen, xaeadSeal } from './crypto.js';
import { WireGuardError } from './errors.js';
import { CookieReply, expectType, newMessage, readU32, writeU32 } from './messages.js';

const enc = new TextEncoder();
const MAC_SIZE = 16;

/** HASH(LABEL || publicKey): the key MAC1 (label "mac1----") or the cookie box (label "cookie--") uses. */
function labelKey(label: string, publicKey: Uint8Array): Uint8Array {
  return hash(enc.encode(label), publicKey);
}

/** Responder side: validates MACs on messages sent to us, and makes cookie replies. */
export class CookieChecker {
  private readonly mac1Key: Uint8Array;
  private readonly encryptionKey: Uint8Array;
  private secret = randomBytes(32);
  private secretSetAt: number;

  constructor(
    ourPublicKey: Uint8Array,
    private readonly clock: Clock,
  ) {
    this.mac1Key = labelKey(LABEL_MAC1, ourPublicKey);
    this.encryptionKey = labelKey(LABEL_COOKIE, ourPublicKey);
    this.secretSetAt = clock.now();
  }

  /** MAC1 = MAC(HASH(LABEL_MAC1 || S_pub), msg up to mac1). */
  checkMac1(msg: Uint8Array): boolean {
    const off = msg.length - 2 * MAC_SIZE;
    return constantTimeEqual(mac(this.mac1Key, msg.subarray(0, off)), msg.subarray(off, off + MAC_SIZE));
  }

  /** MAC2 = MAC(cookie, msg up to mac2), where cookie = MAC(R_m, source address). */
  checkMac2(msg: Uint8Array, source: Uint8Array): boolean {
    const off = msg.length - MAC_SIZE;
    const cookie = mac(this.currentSecret(), source);
    return constantTimeEqual(mac(cookie, msg.subarray(0, off)), msg.subarray(off));
  }

  /** A cookie reply to `msg` (whose sender index is at `senderOffset`), sent to `source`. */
  createReply(msg: Uint8Array, senderOffset: number, source: Uint8Array): Uint8Array {
    const reply = newMessage(MESSAGE_COOKIE_REPLY, MESSAGE_COOKIE_REPLY_SIZE);
    writeU32(reply, CookieReply.receiver, readU32(msg, senderOffset));
    const nonce = randomBytes(COOKIE_NONCE_SIZE);
    reply.set(nonce, CookieReply.nonce);
    const cookie = mac(this.currentSecret(), source);
    const mac1 = msg.subarray(msg.length - 2 * MAC_SIZE, msg.length - MAC_SIZE);
    reply.set(xaeadSeal(this.encryptionKey, nonce, cookie, mac1), CookieReply.cookie);
    return reply;
  }

  /** R_m changes every COOKIE_REFRESH_TIME so that old cookies stop working (§5.4.7). */
  private currentSecret(): Uint8Array {
    const now = this.clock.now();
    if (now - this.secretSetAt > COOKIE_REFRESH_TIME) {
      this.secret = randomBytes(32);
      this.secretSetAt = now;
    }
    return this.secret;
  }
}

/** Initiator side, one per peer: adds MACs to our messages and takes the peer's cookies. */
export class CookieGenerator {
  private readonly mac1Key: Uint8Array;
  private readonly encryptionKey: Uint8Array;
  private cookie: Uint8Array | undefined;
  private cookieSetAt = 0;
  private lastMac1: Uint8Array | undefined;

  constructor(
    peerPublicKey: Uint8Array,
    private readonly clock: Clock,
  ) {
    this.mac1Key = labelKey(LABEL_MAC1, peerPublicKey);
    this.encryptionKey = labelKey(LABEL_COOKIE, peerPublicKey);
  }

  /** Fills mac1, and mac2 when we hold a fresh cookie, in place. */
  addMacs(msg: Uint8Array): void {
    const mac1Off = msg.length - 2 * MAC_SIZE;
    const mac1 = mac(this.mac1Key, msg.subarray(0, mac1Off));
    msg.set(mac1, mac1Off);
    this.lastMac1 = mac1;
    const mac2Off = msg.length - MAC_SIZE;
    // A cookie is good for COOKIE_REFRESH_TIME at the responder; stop using it a REKEY_TIMEOUT early (wireguard-go).
    if (this.cookie && this.clock.now() - this.cookieSetAt < COOKIE_REFRESH_TIME - REKEY_TIMEOUT) {
      msg.set(mac(this.cookie, msg.subarray(0, mac2Off)), mac2Off);
    } else {
      msg.fill(0, mac2Off);
    }
  }

  /**
   * Takes a cookie reply to the last message we sent. Throws DECRYPT_FAILED when it does
   * not authenticate (forged, or for an older message) and INVALID_STATE when we sent nothing.
   */
  consumeReply(reply: Uint8Array): void {
    expectType(reply, MESSAGE_COOKIE_REPLY);
    if (!this.lastMac1)
      throw new WireGuardError('INVALID_STATE', 'cookie reply without a message awaiting one');
    const nonce = reply.subarray(CookieReply.nonce, CookieReply.nonce + COOKIE_NONCE_SIZE);
    const sealed = reply.subarray(CookieReply.cookie, CookieReply.cookie + 2 * MAC_SIZE);
    this.cookie = xaeadOpen(this.encryptionKey, nonce, sealed, this.lastMac1);
    this.cookieSetAt = this.clock.now();
    this.lastMac1 = undefined;
  }

  get hasCookie(): boolean {
    return this.cookie !== undefined;
  }
}
