/**
 * The address at the other end of what a server hands its handler: a tailnet socket, an HTTP
 * request, or a TLS or HTTP/2 layer over a tailnet socket. node wraps a socket that is not a
 * kernel one in a JSStreamSocket (`.stream` is the socket), and a TLSSocket over it reports no
 * remoteAddress of its own, so the walk goes down through `.socket`, `.stream` and the stream
 * wrap TLS keeps (`_handle._parentWrap`).
 */

/** What `tn.whois()` accepts besides an address string. */
export type RemoteLike = { remoteAddress?: string } | { socket?: unknown } | object;

/** The remote address of a socket, request or stream, looking through the layers on top of it. */
export function remoteAddressOf(x: RemoteLike | undefined): string | undefined {
  let cur: unknown = x;
  // request → socket (an HTTP/2 proxy of it) → TLS → stream wrap → tailnet socket: a few hops at most.
  for (let hops = 0; hops < 6 && cur && typeof cur === 'object'; hops++) {
    const o = cur as Record<string, unknown>;
    if (typeof o.remoteAddress === 'string') return o.remoteAddress;
    const handle = o._handle as { _parentWrap?: unknown } | null | undefined;
    cur = o.socket ?? o.stream ?? handle?._parentWrap ?? o._parent;
  }
  return undefined;
}
