/** What went wrong, as a stable machine-readable code. */
export type WireGuardErrorCode =
  | 'BAD_KEY'
  | 'MALFORMED_MESSAGE'
  | 'UNKNOWN_PEER'
  | 'DECRYPT_FAILED'
  | 'REPLAYED'
  | 'STALE_TIMESTAMP'
  | 'BAD_MAC'
  | 'INVALID_STATE'
  | 'BAD_CONFIG'
  | 'CLOSED';

/** Every error the wireguard layer throws. Messages never contain key material. */
export class WireGuardError extends Error {
  override readonly name = 'WireGuardError';
  constructor(
    readonly code: WireGuardErrorCode,
    message: string,
  ) {
    super(message);
  }
}
