/** What a TcpEndpoint's users hand it and read from it: listeners, forwarded SYNs, counters. */
import type { TcpConnection } from './connection.js';

/** A passive open waiting for SYNs on a port. */
export interface Listener {
  readonly port: number;
  /** Only this local address, or any when undefined. */
  readonly address: Uint8Array | undefined;
  /** Most half-open plus not yet handed over connections (listen(2)'s backlog). */
  backlog: number;
  halfOpen: number;
  /** A passive connection reached ESTABLISHED. */
  onConnection(c: TcpConnection): void;
  /** For one connection only, outside the port table (a forwarded SYN's, see {@link TcpForwardRequest}). */
  oneShot?: boolean;
  /** A passive connection of this listener died before it was established. */
  onAbandoned?(): void;
}

/**
 * A SYN to a routed address (Stack.setRouted) that a router decides on, as gVisor's
 * tcp.ForwarderRequest for tailscaled's netstack: it dials the destination first, then either
 * completes our side of the handshake or answers with a RST. Retransmitted SYNs of a request
 * still undecided are dropped. The forwarder must call `accept` or `reject` exactly once.
 */
export interface TcpForwardRequest {
  /** The destination the client dialled: the routed address and port. */
  readonly local: string;
  readonly localPort: number;
  /** The client (a tailnet peer). */
  readonly remote: string;
  readonly remotePort: number;
  /**
   * Sends the SYN-ACK: `onEstablished` gets the connection once the client's ACK arrives, or
   * `onAbandoned` runs when it never does (the client gave up, or a RST).
   */
  accept(onEstablished: (c: TcpConnection) => void, onAbandoned: () => void): void;
  /** Answers the SYN with a RST, as a closed port (RFC 9293 §3.10.7.1). */
  reject(): void;
}

/** Counters for the whole endpoint. */
export interface TcpStats {
  segmentsIn: number;
  segmentsOut: number;
  badChecksum: number;
  malformed: number;
  resetsSent: number;
  activeOpens: number;
  passiveOpens: number;
  synsDropped: number;
  challengeAcks: number;
  /** Loss recovery: retransmission timeouts, tail loss probes, fast recoveries entered. */
  timeouts: number;
  probes: number;
  recoveries: number;
  /** Segments the IP layer refused (stack closed, no route). */
  sendErrors: number;
  /** Window reductions undone because the retransmission proved spurious (RFC 3522). */
  spurious: number;
}
