/**
 * quackscale in a web page (`quackscale/browser`): the same node as on Node, with what a page
 * has. Control speaks ts2021 over a WebSocket, DERP rides WebSockets, there is no UDP (every
 * path is DERP), keys and AEAD come from noble and our WASM, TCP from our netstack, and state
 * lives in memory or IndexedDB. `tn.dial()` gives a TCP socket, `tn.fetch()` HTTP/1.1 over it.
 *
 * @example
 * import { Tailnet } from 'quackscale/browser';
 * const tn = new Tailnet({ controlURL: 'https://hs.example.com', authKey, hostname: 'page',
 *   controlKey: 'mkey:…' });        // Headscale sends no CORS on /key: pass its key in
 * await tn.up();
 * const res = await tn.fetch('http://db-server:8000/sales.csv');
 */

import { Tailnet as NodeTailnet } from '../tailnet/tailnet.js';
import type { Logger } from '../wireguard/logger.js';
import { IndexedDbStateStore, MemoryStateStore } from './state.js';

export { HttpFetchError } from '../tailnet/http1-fetch.js';
export type { PeerStatus, TailnetStatus } from '../tailnet/tailnet.js';
export { IndexedDbStateStore, MemoryStateStore } from './state.js';

export interface BrowserTailnetOptions {
  /** The control server (Headscale, Tailscale, or ours): it must accept ts2021 over WebSocket. */
  controlURL: string;
  /** Auth key (a pre-auth key); without one, `onAuthURL` gets the URL to approve. */
  authKey?: string;
  hostname?: string;
  /** Register as ephemeral: control drops the node soon after the page goes. */
  ephemeral?: boolean;
  /**
   * The control server's Noise key (`mkey:…`, what `GET /key?v=…` returns). Without it the page
   * fetches /key, which needs CORS on another origin: our control server sends it, Headscale
   * v0.29 does not (pass the key, or serve /key through the page's own origin).
   */
  controlKey?: string;
  /** `'memory'` (default) or `{ indexedDB: name }` to keep the node across page loads. */
  state?: 'memory' | { indexedDB: string };
  /** Reach DERP relays over plain ws: (test relays); default: when controlURL is http:. */
  derpHttp?: boolean;
  onAuthURL?: (url: string) => void;
  logger?: Logger;
}

/** A tailnet node in a web page. */
export class Tailnet extends NodeTailnet {
  constructor(opts: BrowserTailnetOptions) {
    super({
      controlURL: opts.controlURL,
      authKey: opts.authKey,
      hostname: opts.hostname ?? 'browser',
      ephemeral: opts.ephemeral,
      controlKey: opts.controlKey,
      controlWebSocket: true,
      stateDir: '',
      stateStore:
        opts.state === undefined || opts.state === 'memory'
          ? new MemoryStateStore()
          : new IndexedDbStateStore(opts.state.indexedDB),
      derpOnly: true,
      endpoints: [],
      derpHttp: opts.derpHttp ?? new URL(opts.controlURL).protocol === 'http:',
      onAuthURL: opts.onAuthURL,
      logger: opts.logger,
    });
  }
}
