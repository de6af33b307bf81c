/**
 * The seam between a WireGuard device and whatever moves its datagrams: a UDP socket
 * ({@link UdpBind}, or {@link BunUdpBind} under Bun), a DERP relay, or magicsock's UDP+DERP
 * (DESIGN.md, "The seams").
 */

/** Where a datagram came from or goes to. `key` is a stable string used for equality. */
export interface Endpoint {
  /** Stable identity, e.g. `"udp:10.0.0.1:51820"` or `"derp:<nodekey>"`. */
  readonly key: string;
  /** Human-readable form for status output, e.g. `10.0.0.1:51820` or `[::1]:51820`. */
  toString(): string;
}

export interface Bind {
  /** Send one datagram. Never throws for a transient network error; those are dropped. */
  send(to: Endpoint, datagram: Uint8Array): void;
  /**
   * Optional batching: between `beginBatch` and `endBatch` a bind may hold sends back and pass
   * them to the OS together (one sendmmsg(2), as {@link BunUdpBind} does); the datagrams' buffers
   * stay unchanged until `endBatch` returns. A bind without these sends each one at once.
   */
  beginBatch?(): void;
  /** Ends a batch begun by {@link beginBatch}: whatever was held back is sent now, in order. */
  endBatch?(): void;
  /** Register the receive handler (a later call replaces it). */
  onDatagram(handler: (from: Endpoint, datagram: Uint8Array) => void): void;
  /** Parse a config-file endpoint (`host:port`, `[v6]:port`) into this bind's Endpoint type. */
  parseEndpoint?(text: string): Endpoint;
  /**
   * The largest inner IP packet the bind lets through toward `to` now, where it knows more than
   * the device's default (path MTU discovery: tailnet/pmtu.ts); undefined means the default.
   * The device never sends a larger packet to that endpoint.
   */
  mtuTo?(to: Endpoint): number | undefined;
  /** Bumped whenever an answer of {@link mtuTo} may have changed (stacks then recompute their MSS). */
  readonly mtuEpoch?: number;
  /** Release sockets; no datagrams are delivered afterwards. */
  close?(): Promise<void> | void;
}

/** A plain endpoint for in-memory binds and tests. */
export class NamedEndpoint implements Endpoint {
  constructor(readonly key: string) {}
  toString(): string {
    return this.key;
  }
}

/**
 * Two in-memory binds joined back to back, for device-to-device tests. Each bind's
 * endpoint is `NamedEndpoint(name)`. Delivery is asynchronous (a microtask), like a socket.
 */
export class MemoryBind implements Bind {
  private handler: (from: Endpoint, datagram: Uint8Array) => void = () => {};
  private readonly net: Map<string, MemoryBind>;
  readonly endpoint: NamedEndpoint;
  /** Datagrams this bind sent, if recording (tests inspect and replay them). */
  sent: Array<{ to: string; datagram: Uint8Array }> | undefined;
  /** Drop outgoing datagrams while true (simulates a cut path); they are still recorded in `sent`. */
  blackhole = false;
  closed = false;

  constructor(name: string, net: Map<string, MemoryBind>) {
    this.endpoint = new NamedEndpoint(name);
    this.net = net;
    net.set(name, this);
  }

  send(to: Endpoint, datagram: Uint8Array): void {
    if (this.closed) return;
    const copy = datagram.slice();
    this.sent?.push({ to: to.key, datagram: copy });
    if (this.blackhole) return;
    const dst = this.net.get(to.key);
    if (!dst) return;
    queueMicrotask(() => dst.deliver(this.endpoint, copy));
  }

  /** Inject a datagram as if it arrived from `from`. */
  deliver(from: Endpoint, datagram: Uint8Array): void {
    if (!this.closed) this.handler(from, datagram);
  }

  onDatagram(handler: (from: Endpoint, datagram: Uint8Array) => void): void {
    this.handler = handler;
  }

  parseEndpoint(text: string): Endpoint {
    return new NamedEndpoint(text);
  }

  close(): void {
    this.closed = true;
    this.net.delete(this.endpoint.key);
  }
}
