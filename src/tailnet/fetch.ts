/**
 * `tn.fetch()`: WHATWG fetch over the tailnet. On Node and Deno, undici with the node's
 * dispatcher (pooled keep-alive connections over tailnet sockets); in a web page and on Bun
 * (whose `undici` is a built-in stand-in that ignores a dispatcher) our HTTP/1.1 client,
 * http1-fetch.ts.
 */
import type { Dispatcher, RequestInit, Response } from 'undici';
import type { TcpSocket } from '../netstack/tcp/socket.js';
import { runtime } from '../platform/runtime.js';
import { http1Fetch } from './http1-fetch.js';

export type { RequestInit, Response };

/** The fetch of one node; `close()` drops its pooled connections. */
export class TailnetFetch {
  private dispatcher: Dispatcher | undefined;

  constructor(
    private readonly makeDispatcher: () => Dispatcher,
    private readonly dial: (host: string, port: number) => Promise<TcpSocket>,
  ) {}

  async fetch(url: string | URL, init?: RequestInit): Promise<Response> {
    if (runtime.name === 'bun' || runtime.name === 'browser') {
      return (await http1Fetch(this.dial, url, init as globalThis.RequestInit)) as unknown as Response;
    }
    // Loaded on first use: undici costs a node ~15 MB of memory, and many never fetch.
    const { fetch: undiciFetch } = await import('undici');
    this.dispatcher ??= this.makeDispatcher();
    return undiciFetch(url, { ...init, dispatcher: this.dispatcher });
  }

  async close(): Promise<void> {
    await this.dispatcher?.destroy();
  }
}
