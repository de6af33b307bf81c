/**
 * ControlClient: the node's side of the control plane (controlclient/auto.go + direct.go in
 * spirit). It logs in (auth key or interactive), keeps a streaming map request open, folds
 * every message into an immutable NetMap, and reconnects with backoff when the server goes
 * away. Events: 'netmap' (NetMap, changes), 'keepalive', 'auth-url' (url), 'retry' (error,
 * delay ms), 'error' (a fatal error that stopped the map loop).
 */
import { EventEmitter } from 'node:events';
import { hostname as osHostname } from 'node:os';
import { Backoff, type BackoffOptions, sleep } from './backoff.js';
import { ClosedError, ControlError, isRetryable, NodeExpiredError, NotLoggedInError } from './errors.js';
import { makeHostinfo } from './hostinfo.js';
import { type NodePublic, PublicKey } from './keys.js';
import { type ControlLogger, silentLogger } from './logger.js';
import { type LoginResult, loginFlow, logoutFlow } from './login.js';
import { type MapRequestParams, sendMapUpdate, streamMap } from './mapsession.js';
import { applyMapResponse, type NetMap, type NetMapChange } from './netmap.js';
import { type ControlState, type ControlStateStore, StateDir } from './state.js';
import type { Hostinfo, PingRequest } from './tailcfg.js';
import { Ts2021Transport } from './transport.js';
import { CAPABILITY_VERSION } from './version.js';

export interface ControlClientOptions {
  /** The control server, e.g. http://127.0.0.1:8080; defaults to the one in the state dir. */
  serverURL?: string;
  stateDir: string;
  /** Defaults to the hostname of the saved login, then the OS hostname. */
  hostname?: string;
  authKey?: string;
  ephemeral?: boolean;
  /** ACL tags to request (Hostinfo.RequestTags). */
  tags?: string[];
  capVersion?: number;
  /** Called with the URL an admin must approve for an interactive login. */
  onAuthURL?: (url: string) => void;
  logger?: ControlLogger;
  backoff?: BackoffOptions;
  /** How long login keeps retrying an unreachable server before giving up (default 30 s). */
  loginTimeoutMs?: number;
  /** Our UDP endpoints ("ip:port") to advertise. */
  endpoints?: string[];
  /** Extra Hostinfo fields. */
  hostinfo?: Partial<Hostinfo>;
  /** Reconnect when no map message (not even a keepalive) arrives for this long (default 120 s). */
  watchdogMs?: number;
  /** Reach control over a WebSocket (what a web page can do) instead of the HTTP upgrade. */
  websocket?: boolean;
  /** The server's Noise key (`mkey:…`), if known: saves the `GET /key`, which a page may not be allowed. */
  controlKey?: string;
  /** Where the state lives, instead of a {@link StateDir} on `stateDir` (a web page's memory or IndexedDB). */
  store?: ControlStateStore;
}

export interface ControlClientEvents {
  netmap: [NetMap, NetMapChange[]];
  keepalive: [];
  'auth-url': [string];
  retry: [Error, number];
  error: [Error];
  /** Control asks for a ping (any map message may carry one; controlclient/direct.go answerPing). */
  'ping-request': [PingRequest];
}

/** A ts2021 client bound to one state directory. */
export class ControlClient extends EventEmitter<ControlClientEvents> {
  readonly serverURL: string;
  readonly capVersion: number;
  readonly #opts: ControlClientOptions;
  readonly #store: ControlStateStore;
  readonly #log: ControlLogger;
  #state: ControlState;
  #transport: Ts2021Transport;
  #hostinfo: Hostinfo;
  #endpoints: string[];
  #netmap: NetMap | undefined;
  #loop: AbortController | undefined;
  #loopDone: Promise<void> | undefined;
  #closed = false;
  #lastError: Error | undefined;
  /**
   * Map streams opened (the first, then every reconnect), and when (Date.now()) the last map
   * message of any kind and the last netmap change arrived (0: none yet), for metrics.
   */
  readonly stats = { mapStreams: 0, lastMessageAt: 0, lastNetmapAt: 0 };

  private constructor(
    opts: ControlClientOptions,
    store: ControlStateStore,
    state: ControlState,
    serverURL: string,
  ) {
    super();
    this.#opts = opts;
    this.#store = store;
    this.#state = state;
    this.serverURL = serverURL;
    this.capVersion = opts.capVersion ?? CAPABILITY_VERSION;
    this.#log = opts.logger ?? silentLogger;
    const hostname = opts.hostname ?? state.login?.hostname ?? osHostname();
    this.#hostinfo = makeHostinfo(hostname, {
      ...(opts.tags ? { RequestTags: opts.tags } : {}),
      ...opts.hostinfo,
    });
    this.#endpoints = [...(opts.endpoints ?? [])];
    this.#transport = this.#newTransport();
  }

  /** Loads (or creates) the state in `opts.stateDir`; no network traffic yet. */
  static async open(opts: ControlClientOptions): Promise<ControlClient> {
    const store = opts.store ?? new StateDir(opts.stateDir);
    const state = await store.loadOrCreate();
    const serverURL = (opts.serverURL ?? state.serverURL)?.replace(/\/+$/, '');
    if (!serverURL)
      throw new NotLoggedInError(`no --server given and ${opts.stateDir} has no saved server URL`);
    if (state.serverURL !== undefined && state.serverURL !== serverURL) {
      // A different server: the old node key and login mean nothing there.
      state.nodeKey = undefined;
      state.oldNodeKey = undefined;
      state.login = undefined;
    }
    state.serverURL = serverURL;
    return new ControlClient(opts, store, state, serverURL);
  }

  #newTransport(): Ts2021Transport {
    return new Ts2021Transport({
      serverURL: this.serverURL,
      machineKey: this.#state.machineKey,
      capVersion: this.capVersion,
      websocket: this.#opts.websocket,
      controlKey:
        this.#opts.controlKey === undefined ? undefined : PublicKey.parse('machine', this.#opts.controlKey),
    });
  }

  /**
   * An HTTP request to control over the Noise channel (as Go's noise client, which carries any
   * URL to the control server: only its path and query are used). Resolves with the status.
   */
  async noiseRequest(method: string, url: string, body?: Uint8Array): Promise<number> {
    const u = new URL(url, this.serverURL);
    const res = await this.#transport.request(method, `${u.pathname}${u.search}`, body);
    res.stream.resume();
    return res.status;
  }

  /** The latest netmap, if any. */
  get netmap(): NetMap | undefined {
    return this.#netmap;
  }

  /** Our node public key, once logged in. */
  get nodeKey(): NodePublic | undefined {
    return this.#state.nodeKey?.publicKey;
  }

  /** The persisted state (keys are redacted when printed). */
  get state(): Readonly<ControlState> {
    return this.#state;
  }

  /**
   * Registers the node: refreshes an existing registration, or uses the auth key, or goes
   * through the interactive AuthURL flow. Retries an unreachable server with backoff until
   * loginTimeoutMs; typed errors otherwise.
   */
  async login(): Promise<LoginResult> {
    if (this.#closed) throw new ClosedError('control client');
    const deadline = Date.now() + (this.#opts.loginTimeoutMs ?? 30_000);
    const backoff = new Backoff(this.#opts.backoff);
    for (;;) {
      try {
        const result = await loginFlow({
          transport: this.#transport,
          state: this.#state,
          capVersion: this.capVersion,
          hostinfo: this.#hostinfo,
          authKey: this.#opts.authKey,
          ephemeral: this.#opts.ephemeral ?? false,
          onAuthURL: (url) => {
            this.#log.info(`interactive login: visit ${url}`);
            this.emit('auth-url', url);
            this.#opts.onAuthURL?.(url);
          },
          save: () => this.#store.save(this.#state),
        });
        this.#log.info(`logged in to ${this.serverURL} as ${this.#state.nodeKey?.publicKey.short()}`);
        return result;
      } catch (err) {
        const delay = backoff.next();
        if (!isRetryable(err) || Date.now() + delay > deadline) throw err;
        this.#log.warn(`login: ${(err as Error).message}; retrying in ${delay} ms`);
        this.emit('retry', err as Error, delay);
        this.#transport.close();
        this.#transport = this.#newTransport();
        await sleep(delay);
      }
    }
  }

  #mapParams(): MapRequestParams {
    const nodeKey = this.#state.nodeKey;
    if (!nodeKey) throw new NotLoggedInError('not logged in: call login() first');
    return {
      capVersion: this.capVersion,
      nodeKey: nodeKey.publicKey.toString(),
      discoKey: this.#state.discoKey.publicKey.toString(),
      hostinfo: this.#hostinfo,
      endpoints: this.#endpoints,
    };
  }

  /** Starts the map stream (after login); 'netmap' events follow. Idempotent. */
  start(): void {
    if (this.#loop || this.#closed) return;
    this.#mapParams();
    const ctl = new AbortController();
    this.#loop = ctl;
    this.#lastError = undefined;
    this.#loopDone = this.#mapLoop(ctl.signal);
  }

  async #mapLoop(signal: AbortSignal): Promise<void> {
    const backoff = new Backoff(this.#opts.backoff);
    while (!signal.aborted) {
      let got = false;
      // Each stream starts from nothing, as Go starts a new mapSession: its first message is a full map.
      let first = true;
      this.stats.mapStreams++;
      try {
        await streamMap(
          this.#transport,
          this.#mapParams(),
          (resp) => {
            got = true;
            this.stats.lastMessageAt = Date.now();
            if (resp.PingRequest) this.emit('ping-request', resp.PingRequest);
            if (resp.KeepAlive) {
              this.emit('keepalive');
              return;
            }
            const { netmap, changes } = applyMapResponse(first ? undefined : this.#netmap, resp);
            first = false;
            this.#netmap = netmap;
            this.stats.lastNetmapAt = this.stats.lastMessageAt;
            if (netmap.self.expired) throw new NodeExpiredError(this.serverURL);
            void this.#noteSelf(netmap);
            this.emit('netmap', netmap, changes);
          },
          signal,
          this.#opts.watchdogMs,
        );
        if (signal.aborted) return;
        this.#log.info('map stream ended by the server; reconnecting');
      } catch (err) {
        if (signal.aborted) return;
        if (err instanceof NodeExpiredError && this.#opts.authKey) {
          this.#log.warn('node key expired; registering a new one with the auth key');
          try {
            await this.login();
          } catch (loginErr) {
            this.#fatal(loginErr);
            return;
          }
          continue;
        }
        if (err instanceof ControlError && !isRetryable(err)) {
          this.#fatal(err);
          return;
        }
        if (got) backoff.reset();
        const delay = backoff.next();
        this.#log.warn(`map stream: ${(err as Error).message}; retrying in ${delay} ms`);
        this.emit('retry', err as Error, delay);
        await sleep(delay, signal);
        continue;
      }
      if (got) backoff.reset();
      await sleep(backoff.next(), signal);
    }
  }

  /** Stops the map loop for good; the error is kept in `lastError` and emitted if anyone listens. */
  #fatal(err: unknown): void {
    const e = err instanceof Error ? err : new Error(String(err));
    this.#log.warn(`map loop stopped: ${e.message}`);
    this.#loop = undefined;
    this.#lastError = e;
    if (this.listenerCount('error') > 0) this.emit('error', e);
  }

  /** The error that stopped the map loop, if it stopped on its own. */
  get lastError(): Error | undefined {
    return this.#lastError;
  }

  /** Remembers our name and addresses for offline `control netmap`. */
  async #noteSelf(nm: NetMap): Promise<void> {
    const login = this.#state.login;
    if (!login) return;
    if (login.nodeName === nm.self.name && login.addresses?.join() === nm.self.addresses.join()) return;
    login.nodeName = nm.self.name;
    login.addresses = [...nm.self.addresses];
    await this.#store
      .save(this.#state)
      .catch((err: unknown) => this.#log.warn(`saving state: ${(err as Error).message}`));
  }

  /** Resolves with the first netmap satisfying `pred` (default: any). */
  waitForNetmap(pred: (nm: NetMap) => boolean = () => true, timeoutMs = 30_000): Promise<NetMap> {
    if (this.#netmap && pred(this.#netmap)) return Promise.resolve(this.#netmap);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.off('netmap', onMap);
        reject(new Error(`no matching netmap within ${timeoutMs} ms`));
      }, timeoutMs);
      const onMap = (nm: NetMap): void => {
        if (!pred(nm)) return;
        clearTimeout(timer);
        this.off('netmap', onMap);
        resolve(nm);
      };
      this.on('netmap', onMap);
    });
  }

  /**
   * The host's network changed: reconnect now rather than when the map stream's watchdog gives
   * up on the old connection (the map loop redials; what is in flight fails and is retried).
   */
  rebind(): void {
    this.#transport.reset();
  }

  /** Advertises new UDP endpoints (a lite map request, as tailscaled does). */
  async setEndpoints(endpoints: string[]): Promise<void> {
    this.#endpoints = [...endpoints];
    await sendMapUpdate(this.#transport, this.#mapParams());
  }

  /** Updates Hostinfo fields and sends them up. */
  async setHostinfo(fields: Partial<Hostinfo>): Promise<void> {
    this.#hostinfo = { ...this.#hostinfo, ...fields };
    await sendMapUpdate(this.#transport, this.#mapParams());
  }

  /** Logs out (expires the node key on the server; ephemeral nodes are deleted) and forgets it. */
  async logout(): Promise<void> {
    await this.#stopLoop();
    await logoutFlow({
      transport: this.#transport,
      state: this.#state,
      capVersion: this.capVersion,
      hostinfo: this.#hostinfo,
      save: () => this.#store.save(this.#state),
    });
    this.#netmap = undefined;
  }

  async #stopLoop(): Promise<void> {
    this.#loop?.abort(new ClosedError('map stream'));
    this.#loop = undefined;
    await this.#loopDone;
    this.#loopDone = undefined;
  }

  /** Stops the map stream and closes the connection; the process may then exit. */
  async close(): Promise<void> {
    this.#closed = true;
    await this.#stopLoop();
    this.#transport.close();
    await this.#store.flush();
  }
}
