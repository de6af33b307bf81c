/** Typed errors of the DERP layer. Messages carry context but never key material. */

export type DerpErrorCode =
  | 'BAD_MAGIC'
  | 'BAD_FRAME'
  | 'FRAME_TOO_LARGE'
  | 'TRUNCATED'
  | 'UNEXPECTED_FRAME'
  | 'BAD_BOX'
  | 'BAD_JSON'
  | 'BAD_KEY'
  | 'HTTP_UPGRADE'
  | 'CONNECT'
  | 'TIMEOUT'
  | 'CLOSED'
  | 'SERVER_FULL'
  | 'BAD_CONFIG'
  | 'BAD_STUN';

/**
 * Every error the DERP layer throws or reports.
 *
 * @example
 * try { decodeServerKey(payload); } catch (e) { if (e instanceof DerpError && e.code === 'BAD_MAGIC') … }
 */
export class DerpError extends Error {
  override readonly name = 'DerpError';
  constructor(
    readonly code: DerpErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/**
 * The message of any thrown value, for logs.
 *
 * @example
 * log.info(`closing: ${errorMessage(err)}`);
 */
export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
