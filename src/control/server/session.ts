/**
 * One streaming map request on the server: sends the full map, then deltas as the tailnet
 * changes, and keepalives (Headscale sends one every 50 s plus jitter; poll.go). Messages are
 * JSON, or stored-zstd when the client asked (tailscaled always does).
 */
import type { ServerHttp2Stream } from 'node:http2';
import { encodeMapMessage } from '../mapstream.js';
import type { FilterRule, MapResponse, PingRequest } from '../tailcfg.js';
import { deltaMap, fullMap, type MapperConfig, type StreamView } from './mapper.js';
import type { NodeRecord } from './store.js';

/** A live map stream to one node. */
export class MapSession {
  #view: StreamView | undefined;
  #keepalive: NodeJS.Timeout | undefined;
  closed = false;

  constructor(
    readonly nodeId: number,
    readonly stream: ServerHttp2Stream,
    readonly zstd: boolean,
    readonly keepAliveMs: number,
  ) {
    stream.on('close', () => this.close());
    this.#armKeepalive();
  }

  #armKeepalive(): void {
    clearTimeout(this.#keepalive);
    this.#keepalive = setTimeout(() => {
      this.#write({ KeepAlive: true });
      this.#armKeepalive();
    }, this.keepAliveMs);
  }

  #write(resp: MapResponse): void {
    if (this.closed || this.stream.destroyed) return;
    this.stream.write(encodeMapMessage(JSON.stringify(resp), this.zstd));
  }

  /** Sends a PingRequest on its own message (tailcfg.MapResponse.PingRequest; ping.ts). */
  ping(req: PingRequest): void {
    this.#write({ PingRequest: req });
  }

  /** Sends the full map (first) or the delta since the last message (later), if any. */
  update(self: NodeRecord, peers: readonly NodeRecord[], filter: FilterRule[], cfg: MapperConfig): void {
    if (this.closed) return;
    if (this.#view === undefined) {
      const { resp, view } = fullMap(self, peers, filter, cfg);
      this.#view = view;
      this.#write(resp);
    } else {
      const resp = deltaMap(this.#view, self, peers, filter, cfg);
      if (resp === undefined) return;
      this.#write(resp);
    }
    this.#armKeepalive();
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.#keepalive);
    // end(), not close(): close() resets the stream and may drop the last queued message.
    if (!this.stream.destroyed) this.stream.end();
  }
}
