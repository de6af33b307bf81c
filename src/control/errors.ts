/**
 * Typed control-plane errors. Each says what happened in words a user can act on, carries
 * context (server URL, HTTP status), and never includes key material.
 */

/** The base class: `kind` lets callers switch without instanceof chains. */
export class ControlError extends Error {
  override readonly name: string = 'ControlError';
  constructor(
    readonly kind:
      | 'unreachable'
      | 'auth-key-rejected'
      | 'node-expired'
      | 'wrong-protocol'
      | 'protocol'
      | 'not-logged-in'
      | 'closed'
      | 'state',
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** The server could not be reached (connect refused, reset, timeout); retried with backoff. */
export class ServerUnreachableError extends ControlError {
  override readonly name = 'ServerUnreachableError';
  constructor(
    readonly serverURL: string,
    detail: string,
    options?: { cause?: unknown },
  ) {
    super('unreachable', `control server ${serverURL} is unreachable: ${detail}`, options);
  }
}

/** The server refused the auth key (unknown, expired, already used). Not retried. */
export class AuthKeyRejectedError extends ControlError {
  override readonly name = 'AuthKeyRejectedError';
  constructor(
    readonly serverURL: string,
    readonly serverMessage: string,
  ) {
    super('auth-key-rejected', `control server ${serverURL} rejected the auth key: ${serverMessage}`);
  }
}

/** The node's key has expired (or was expired by an admin); a fresh login is needed. */
export class NodeExpiredError extends ControlError {
  override readonly name = 'NodeExpiredError';
  constructor(readonly serverURL: string) {
    super(
      'node-expired',
      `node key expired on ${serverURL}; log in again (with an auth key or interactively)`,
    );
  }
}

/** The peer at the URL does not speak ts2021 (no /key, no 101 upgrade, bad Noise). */
export class WrongProtocolError extends ControlError {
  override readonly name = 'WrongProtocolError';
  constructor(
    readonly serverURL: string,
    detail: string,
    options?: { cause?: unknown },
  ) {
    super('wrong-protocol', `${serverURL} does not speak the Tailscale control protocol: ${detail}`, options);
  }
}

/** A message that does not decode, or a server reply that breaks the protocol's rules. */
export class ProtocolError extends ControlError {
  override readonly name = 'ProtocolError';
  constructor(message: string, options?: { cause?: unknown }) {
    super('protocol', message, options);
  }
}

/** An operation that needs a registered node was called before login. */
export class NotLoggedInError extends ControlError {
  override readonly name = 'NotLoggedInError';
  constructor(detail: string) {
    super('not-logged-in', detail);
  }
}

/** The client or connection was closed while the operation was in flight. */
export class ClosedError extends ControlError {
  override readonly name = 'ClosedError';
  constructor(what: string) {
    super('closed', `${what} was closed`);
  }
}

/** The state directory is unreadable, corrupt or has unsafe permissions. */
export class StateError extends ControlError {
  override readonly name = 'StateError';
  constructor(message: string, options?: { cause?: unknown }) {
    super('state', message, options);
  }
}

/** Whether an error is worth retrying (the network, not the server's verdict). */
export function isRetryable(err: unknown): boolean {
  return err instanceof ServerUnreachableError;
}
