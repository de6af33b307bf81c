/**
 * Protocol constants, named as in the WireGuard paper (§5.4, §6) and wireguard-go
 * `device/constants.go` / `device/noise-protocol.go`.
 */

export const CONSTRUCTION = 'Noise_IKpsk2_25519_ChaChaPoly_BLAKE2s';
export const IDENTIFIER = 'WireGuard v1 zx2c4 Jason@zx2c4.com';
export const LABEL_MAC1 = 'mac1----';
export const LABEL_COOKIE = 'cookie--';

export const MESSAGE_INITIATION = 1;
export const MESSAGE_RESPONSE = 2;
export const MESSAGE_COOKIE_REPLY = 3;
export const MESSAGE_TRANSPORT = 4;

export const MESSAGE_INITIATION_SIZE = 148;
export const MESSAGE_RESPONSE_SIZE = 92;
export const MESSAGE_COOKIE_REPLY_SIZE = 64;
/** type(4) + receiver(4) + counter(8) */
export const MESSAGE_TRANSPORT_HEADER_SIZE = 16;
export const MESSAGE_TRANSPORT_SIZE_MIN = MESSAGE_TRANSPORT_HEADER_SIZE + 16;
export const MESSAGE_KEEPALIVE_SIZE = MESSAGE_TRANSPORT_SIZE_MIN;

export const TAG_SIZE = 16;
export const KEY_SIZE = 32;
export const TIMESTAMP_SIZE = 12;
export const COOKIE_NONCE_SIZE = 24;
export const PADDING_MULTIPLE = 16;

/** Seconds, §6.1 */
export const REKEY_AFTER_MESSAGES = 2 ** 60;
/**
 * The paper's limit is 2^64 - 2^13 - 1. Counters are JS numbers here, exact up to 2^53, and
 * messages.ts reports larger received counters as NaN (rejected); no sender gets near either.
 */
export const REJECT_AFTER_MESSAGES = Number.MAX_SAFE_INTEGER;
export const REKEY_AFTER_TIME = 120_000;
export const REKEY_ATTEMPT_TIME = 90_000;
export const REKEY_TIMEOUT = 5_000;
export const MAX_TIMER_HANDSHAKES = REKEY_ATTEMPT_TIME / REKEY_TIMEOUT; // 18
export const REKEY_TIMEOUT_JITTER_MAX = 334;
export const REJECT_AFTER_TIME = 180_000;
export const KEEPALIVE_TIMEOUT = 10_000;
export const COOKIE_REFRESH_TIME = 120_000;
/** The handshake initiation rate limit per peer: at most one per REKEY_TIMEOUT from us, 50/s inbound. */
export const HANDSHAKE_INITATION_RATE = 50;

/** Sliding replay window size in packets (RFC 6479 style, as wireguard-go's 8192-bit ring). */
export const REPLAY_WINDOW_SIZE = 8192 - 64;

/** Pending handshakes above which the device is "under load" and demands MAC2 (wireguard-go: QueueHandshakeSize/8). */
export const UNDER_LOAD_QUEUE_THRESHOLD = 128;
/** How long the device stays under load after the queue drains (wireguard-go UnderLoadAfterTime). */
export const UNDER_LOAD_AFTER_TIME = 1_000;

export const DEFAULT_MTU = 1420;
