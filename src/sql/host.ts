// The worker's side of the SQL functions: one tailnet node, its login state, the loopback
// proxies DuckDB (HTTP) and other programs (SOCKS5) use, and the forwarders and serve_local
// listeners the functions open. Runs on the worker's event loop; worker.ts feeds it requests.
import type net from 'node:net';
import type { Duplex } from 'node:stream';
import { type HttpProxy, startHttpProxy } from '../tailnet/http-proxy.js';
import { NameResolver } from '../tailnet/names.js';
import { type Socks5Destination, Socks5Server } from '../tailnet/socks5-server.js';
import { Tailnet } from '../tailnet/tailnet.js';
import {
  IDLE_STATE,
  type LoginRequest,
  type LoginState,
  NOT_UP,
  type NodeState,
  type PeerRow,
  type ProxyEndpoint,
  type Reply,
  redact,
  type UpRequest,
} from './protocol.js';

const starting: LoginState = { status: 'starting', loginUrl: null, message: 'Joining tailnet' };

/** Thrown by {@link NodeHost.up} when the node has no login and needs an admin's approval. */
class NeedsLoginError extends Error {}

/** The node behind the SQL functions, as the worker holds it. */
export class NodeHost {
  private node: Tailnet | undefined;
  /** True once up() or login() has resolved for `node`. */
  private isUp = false;
  private loginState: LoginState = IDLE_STATE.login;
  /** An interactive login in progress: settles when it succeeds or fails. */
  private pending: Promise<void> | undefined;
  /** Wakes login()'s bounded wait when the URL arrives or the login settles. */
  private changed: (() => void) | undefined;
  private http: HttpProxy | undefined;
  private socks: Socks5Server | undefined;
  /** Names for the proxies before the first netmap: 100.64/10 and *.ts.net only. */
  private readonly noNames = new NameResolver([], '');

  state(): NodeState {
    const n = this.node;
    if (!n) return { ...IDLE_STATE, login: this.loginState };
    const s = n.status();
    const running = this.isUp && s.running;
    const dns = s.self.name.replace(/\.$/, '');
    return {
      running,
      hostname: s.self.hostname || null,
      tailnetIps: s.self.addresses,
      dnsName: dns || null,
      login: running ? { status: 'up', loginUrl: null, message: 'Connected' } : this.loginState,
    };
  }

  private reply(extra: Partial<Extract<Reply, { ok: true }>> = {}): Reply {
    const endpoint = (p: HttpProxy | Socks5Server | undefined): ProxyEndpoint | undefined =>
      p && { host: p.host, port: p.port, username: p.username, password: p.password };
    const proxy = endpoint(this.http);
    const socks = endpoint(this.socks);
    return { ok: true, state: this.state(), ...(proxy && { proxy }), ...(socks && { socks }), ...extra };
  }

  /** The node, if it is up; otherwise the error every function reports before tailscale_up. */
  private requireUp(): Tailnet {
    if (!this.node || !this.state().running) throw new Error(NOT_UP);
    return this.node;
  }

  /**
   * The proxies route by the current node's names and dial through it; before the node is up
   * (during an interactive login) they are inert for tailnet hosts and pass the rest through,
   * as the original's router "stays inert until the node comes up".
   */
  private async startProxies(req: Omit<UpRequest, 'op'>): Promise<void> {
    const isTailnetHost = (h: string) => (this.node ?? this.noNames).isTailnetHost(h);
    if (req.httpRoute && !this.http) this.http = await startHttpProxy({ isTailnetHost, dial: this.dial });
    if (req.loopbackProxy) await this.startSocks();
  }

  private readonly dial = async (h: string, p: number): Promise<Duplex> => this.requireUp().dial(h, p);

  /**
   * loopback_proxy: the original's libtailscale loopback SOCKS proxy, for programs that take
   * ALL_PROXY rather than DuckDB's http_proxy settings; the SQL thread exports its URL. As the
   * whole process's ALL_PROXY it must pass non-tailnet hosts through (direct).
   */
  private async startSocks(): Promise<void> {
    this.socks ??= await Socks5Server.listen({
      classify: (h) => this.classify(h),
      dial: this.dial,
      direct: true,
      username: 'tsnet', // libtailscale's loopback proxy user
    });
  }

  /** tailscale_quack_proxy (deprecated in the original): the SOCKS5 proxy, once the node is up. */
  async socksProxy(): Promise<Reply> {
    this.requireUp();
    await this.startSocks();
    return this.reply();
  }

  /** Where a SOCKS5 destination lies, for the proxy's routing and reply codes. */
  private classify(host: string): Socks5Destination {
    const tn = this.node;
    if (!(tn ?? this.noNames).isTailnetHost(host)) return 'other';
    try {
      tn?.resolve(host);
      return tn ? 'peer' : 'tailnet-unknown';
    } catch {
      return 'tailnet-unknown'; // no node has that name or address
    }
  }

  private newNode(req: Omit<UpRequest, 'op'>, onAuthURL: (url: string) => void): Tailnet {
    return new Tailnet({
      hostname: req.hostname,
      authKey: req.authKey,
      controlURL: req.controlURL,
      stateDir: req.stateDir,
      ephemeral: req.ephemeral,
      derpHttp: req.derpHttp,
      endpoints: req.endpoints,
      ...req.routes,
      onAuthURL,
    });
  }

  /** Blocks (the caller's bounded wait) until the node is up; an interactive login is an error. */
  async up(req: UpRequest): Promise<Reply> {
    if (this.state().running) return this.reply();
    if (this.pending) {
      // Waiting here could outlast the SQL thread's bound and end the login with the worker.
      return {
        ok: false,
        error: `a tailscale_login() is in progress (${this.loginState.status}): poll tailscale_login_status(), or cancel it with tailscale_down()`,
      };
    }
    await this.closeNode();
    // tailscale_up is for keys and saved logins: a node that gets an AuthURL would block on a
    // browser, so up fails at once instead and points to tailscale_login.
    let needsLogin: ((err: Error) => void) | undefined;
    const interactive = new Promise<never>((_, reject) => {
      needsLogin = reject;
    });
    const tn = this.newNode(req, () =>
      // Only while up() waits: a later AuthURL (a re-login) must not reject an unwatched promise.
      needsLogin?.(
        new NeedsLoginError(
          'this node needs an interactive login: use tailscale_login(), or pass authkey (or set TS_AUTHKEY)',
        ),
      ),
    );
    this.node = tn;
    const upping = tn.up();
    try {
      await Promise.race([upping, interactive]);
      needsLogin = undefined;
      await this.startProxies(req);
    } catch (err) {
      needsLogin = undefined;
      // The node is closed below; a later rejection of `upping` (closed mid-login) has
      // nothing left to report, since this call already reports `err`.
      upping.catch(() => {});
      await this.down();
      return { ok: false, error: redact(err, [req.authKey]) };
    }
    this.isUp = true;
    this.loginState = { status: 'up', loginUrl: null, message: 'Connected' };
    return this.reply();
  }

  /**
   * Starts an interactive join and answers once the login URL is known, the node is up, the
   * login failed, or `waitMs` passed, whichever is first. A login in progress is reported,
   * not restarted; a failed one is restarted.
   */
  async login(req: LoginRequest): Promise<Reply> {
    if (!this.pending && !this.state().running) {
      await this.closeNode();
      try {
        await this.startProxies(req);
      } catch (err) {
        await this.down();
        return { ok: false, error: redact(err, [req.authKey]) };
      }
      this.loginState = starting;
      const tn = this.newNode(req, (url) => {
        if (this.node !== tn) return;
        this.loginState = {
          status: 'needs_login',
          loginUrl: url,
          message: 'Open login_url in a browser to authorize this node',
        };
        this.changed?.();
      });
      this.node = tn;
      this.pending = tn.login().then(
        () => {
          if (this.node !== tn) return; // tailscale_down came first
          this.isUp = true;
          this.loginState = { status: 'up', loginUrl: null, message: 'Connected' };
        },
        (err: unknown) => {
          if (this.node !== tn) return;
          this.loginState = { status: 'error', loginUrl: null, message: redact(err, [req.authKey]) };
          void tn.close();
        },
      );
      void this.pending.finally(() => {
        if (this.node === tn) this.pending = undefined;
        this.changed?.();
      });
    }
    if (this.loginState.status === 'starting' && !this.state().running) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, req.waitMs);
        this.changed = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.changed = undefined;
    }
    return this.reply();
  }

  peers(): Reply {
    const tn = this.node;
    if (!tn || !this.state().running) return this.reply({ peers: [] });
    const peers: PeerRow[] = tn.peers().map((p) => ({
      name: p.hostname,
      dnsName: p.name.replace(/\.$/, ''),
      tailnetIps: p.addresses,
      online: p.online ?? null,
      path: p.path,
      lastHandshakeMs: p.lastHandshake ?? null,
      rxBytes: p.rxBytes,
      txBytes: p.txBytes,
    }));
    return this.reply({ peers });
  }

  /** tailscale_serve_local: tailnet TCP on `port` to 127.0.0.1:`localPort` (closed by down). */
  async serveLocal(port: number, localPort: number): Promise<Reply> {
    await this.requireUp().serveLocal(port, localPort);
    return this.reply({ localPort });
  }

  /** tailscale_ping: a TCP dial over the tailnet, closed at once. */
  async ping(host: string, port: number, timeoutMs: number): Promise<Reply> {
    const tn = this.requireUp();
    try {
      const sock = await tn.dial(host, port, { timeout: timeoutMs });
      sock.destroy();
    } catch (err) {
      throw new Error(`dial ${host}:${port} failed: ${(err as Error).message}`);
    }
    return this.reply();
  }

  /** tailscale_quack_forward: a loopback listener dialling host:port per connection (closed by down). */
  async forward(host: string, port: number, localPort: number): Promise<Reply> {
    const server = await this.requireUp().forward(localPort, host, port);
    return this.reply({ localPort: (server.address() as net.AddressInfo).port });
  }

  private async closeNode(): Promise<void> {
    const n = this.node;
    this.node = undefined;
    this.isUp = false;
    this.pending = undefined;
    // Tailnet.close closes its listeners, forwarders and serve_local listeners too.
    await n?.close();
  }

  /** Closes the node and everything opened for it; the state is idle again. */
  async down(): Promise<Reply> {
    await this.closeNode();
    const [http, socks] = [this.http, this.socks];
    this.http = undefined;
    this.socks = undefined;
    await http?.close();
    await socks?.close();
    this.loginState = IDLE_STATE.login;
    return this.reply();
  }
}
