/** What went wrong, as a stable machine-readable code. */
export type NetstackErrorCode =
  /** A packet or message is truncated, inconsistent or uses a field value the RFC forbids. */
  | 'MALFORMED_PACKET'
  /** A header or message checksum does not verify. */
  | 'BAD_CHECKSUM'
  /** A well-formed packet uses something this stack deliberately does not implement. */
  | 'UNSUPPORTED'
  /** No reply arrived in time. */
  | 'TIMEOUT'
  /** There is no local address of the family needed to reach a destination. */
  | 'NO_ROUTE'
  /** The stack was closed. */
  | 'CLOSED'
  /** A textual or binary IP address or prefix is invalid. */
  | 'BAD_ADDRESS'
  /** A packet would not fit the link's MTU (or IP's own length fields). */
  | 'TOO_BIG'
  /** A protocol number or ping sequence number is already taken. */
  | 'IN_USE'
  /** An API argument is out of range (a programming error, not bad input from the wire). */
  | 'INVALID_ARGUMENT'
  /** The call does not fit the object's state (connecting a socket twice, or with no endpoint). */
  | 'INVALID_STATE';

/** Every error the netstack layer throws; parsers throw nothing else. */
export class NetstackError extends Error {
  override readonly name = 'NetstackError';
  constructor(
    readonly code: NetstackErrorCode,
    message: string,
  ) {
    super(message);
  }
}
