// Real control-plane peers for the control interop tests: a Headscale per test file (sqlite, plain HTTP on a
// unique loopback port, a local DERP map file, no policy = allow all; research/real-peers.md §2) and
// userspace-networking tailscaled nodes (§4). Every process and temp dir is registered with a Cleanup.
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { DERPMap } from '../../src/control/tailcfg.js';
import { Tailnet } from '../../src/tailnet/tailnet.js';
import { type Cleanup, exec, type Spawned, spawnIn, waitFor } from './rig/exec.js';

export const PEERS_BIN = process.env.PEERS_BIN ?? '/opt/tsbin';
export const HEADSCALE = join(PEERS_BIN, 'headscale');
export const TAILSCALED = join(PEERS_BIN, 'tailscaled');
export const TAILSCALE = join(PEERS_BIN, 'tailscale');
export const DERPER = join(PEERS_BIN, 'derper');

/** A free TCP port on 127.0.0.1 (bound and released; races are unlikely on a test machine). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

/** A temp dir removed on cleanup. */
export async function tempDir(cleanup: Cleanup, prefix: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  cleanup.add(`rm ${dir}`, () => rm(dir, { recursive: true, force: true }));
  return dir;
}

/** A plain-HTTP derper on loopback (STUN off): tailscaled only reaches Running with a live DERP connection. */
export class Derper {
  private constructor(
    readonly port: number,
    readonly proc: Spawned,
  ) {}

  static async start(cleanup: Cleanup): Promise<Derper> {
    const dir = await tempDir(cleanup, 'qs-derper-');
    const port = await freePort();
    const proc = spawnIn(
      null,
      DERPER,
      ['-a', `127.0.0.1:${port}`, '-stun=false', '-c', join(dir, 'derper.json')],
      {
        cleanup,
      },
    );
    await waitFor(
      'derper listening',
      async () => {
        if (!proc.isRunning()) throw new Error(`derper exited:\n${proc.output()}`);
        const ok = await fetch(`http://127.0.0.1:${port}/derp/probe`).then(
          (r) => r.ok,
          () => false,
        );
        return ok ? true : undefined;
      },
      20_000,
      100,
    );
    return new Derper(port, proc);
  }

  /** The tailcfg.DERPMap JSON for this relay (region 900). */
  derpMap(): DERPMap {
    return localDerpMap(this.port);
  }
}

/** A DERP map of one plain-HTTP relay on 127.0.0.1:`port` (region 900, no STUN). */
export function localDerpMap(port: number): DERPMap {
  return {
    Regions: {
      '900': {
        RegionID: 900,
        RegionCode: 'local',
        RegionName: 'Local test DERP',
        Nodes: [
          {
            Name: '900a',
            RegionID: 900,
            HostName: '127.0.0.1',
            IPv4: '127.0.0.1',
            IPv6: 'none',
            STUNPort: -1,
            DERPPort: port,
          },
        ],
      },
    },
  };
}

export interface HeadscaleNode {
  id: number | string;
  name: string;
  given_name?: string;
  ip_addresses: string[];
  online?: boolean;
  [field: string]: unknown;
}

/** A running Headscale with its CLI. */
export class Headscale {
  proc: Spawned | undefined;
  private constructor(
    readonly dir: string,
    readonly port: number,
    readonly config: string,
    private readonly cleanup: Cleanup,
  ) {}

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  static async start(
    cleanup: Cleanup,
    opts: { ephemeralTimeout?: string; derpPort?: number; policy?: string; metricsPort?: number } = {},
  ): Promise<Headscale> {
    const dir = await tempDir(cleanup, 'qs-hs-');
    // An ACL policy (HuJSON) in a file; without one Headscale allows all.
    const policy = opts.policy === undefined ? '' : join(dir, 'policy.hujson');
    if (opts.policy !== undefined) await writeFile(policy, opts.policy);
    const [port, grpcPort] = [await freePort(), await freePort()];
    const derp = join(dir, 'derp.yaml');
    // A DERP region nobody listens on: clients only need a non-empty map (headscale refuses an empty one).
    await writeFile(
      derp,
      'regions:\n  900:\n    regionid: 900\n    regioncode: local\n    regionname: Local test DERP\n    nodes:\n' +
        '      - { name: 900a, regionid: 900, hostname: 127.0.0.1, ipv4: 127.0.0.1, ipv6: "none", stunport: -1, ' +
        `derpport: ${opts.derpPort ?? 1} }\n`,
    );
    const config = join(dir, 'config.yaml');
    await writeFile(
      config,
      [
        `server_url: http://127.0.0.1:${port}`,
        `listen_addr: 127.0.0.1:${port}`,
        // Its debug listener (/metrics, /debug/ping) only when a test asks for it.
        `metrics_listen_addr: "${opts.metricsPort ? `127.0.0.1:${opts.metricsPort}` : ''}"`,
        `grpc_listen_addr: 127.0.0.1:${grpcPort}`,
        'disable_check_updates: true',
        `unix_socket: ${join(dir, 'headscale.sock')}`,
        'unix_socket_permission: "0770"',
        `noise: { private_key_path: ${join(dir, 'noise_private.key')} }`,
        'prefixes: { v4: 100.64.0.0/10, v6: "fd7a:115c:a1e0::/48", allocation: sequential }',
        `database: { type: sqlite, sqlite: { path: ${join(dir, 'db.sqlite')}, write_ahead_log: true } }`,
        `derp: { server: { enabled: false }, urls: [], paths: [${derp}], auto_update_enabled: false }`,
        'dns: { magic_dns: true, base_domain: tailnet.test, override_local_dns: false, nameservers: { global: [] } }',
        `node: { expiry: 0, ephemeral: { inactivity_timeout: ${opts.ephemeralTimeout ?? '66s'} } }`,
        'log: { level: info, format: text }',
        `policy: { mode: file, path: "${policy}" }`,
        'logtail: { enabled: false }',
        '',
      ].join('\n'),
    );
    const hs = new Headscale(dir, port, config, cleanup);
    await hs.run();
    return hs;
  }

  /** Starts (or restarts) the server and waits for /health. */
  async run(): Promise<void> {
    this.proc = spawnIn(null, HEADSCALE, ['-c', this.config, 'serve'], { cleanup: this.cleanup });
    const proc = this.proc;
    await waitFor(
      'headscale /health',
      async () => {
        if (!proc.isRunning()) throw new Error(`headscale exited:\n${proc.output()}`);
        const ok = await fetch(`${this.url}/health`).then(
          (r) => r.ok,
          () => false,
        );
        return ok ? true : undefined;
      },
      30_000,
      100,
    );
  }

  async stop(): Promise<void> {
    await this.proc?.stop();
  }

  async cli(args: string[]): Promise<string> {
    const res = await exec(HEADSCALE, ['-c', this.config, ...args], { timeoutMs: 20_000 });
    return res.stdout;
  }

  async createUser(name: string): Promise<number> {
    await this.cli(['users', 'create', name]);
    const users = JSON.parse(await this.cli(['users', 'list', '-o', 'json'])) as {
      id: number | string;
      name: string;
    }[];
    const u = users.find((x) => x.name === name);
    if (!u) throw new Error(`user ${name} not listed after create`);
    return Number(u.id);
  }

  async createKey(user: number, opts: { reusable?: boolean; ephemeral?: boolean } = {}): Promise<string> {
    const args = ['preauthkeys', 'create', '-u', String(user), '-e', '1h'];
    if (opts.reusable) args.push('--reusable');
    if (opts.ephemeral) args.push('--ephemeral');
    return (await this.cli(args)).trim().split('\n').pop()!.trim();
  }

  async nodes(): Promise<HeadscaleNode[]> {
    const out = (await this.cli(['nodes', 'list', '-o', 'json'])).trim();
    return out === '' || out === 'null' ? [] : (JSON.parse(out) as HeadscaleNode[]);
  }
}

export interface TailscaledOptions {
  /** Extra environment, e.g. TS_DEBUG_ALWAYS_USE_DERP=1. */
  env?: Record<string, string>;
  /** Run tailscaled's SOCKS5 server on 127.0.0.1 at this port (userspace networking dials out through it). */
  socks5Port?: number;
  /** Keep state in a file, so a restarted tailscaled comes back as the same node. */
  persist?: boolean;
  /**
   * false: none of the rig's TS_DEBUG_* variables (plain-HTTP DERP, loopback-only endpoints), i.e.
   * tailscaled as a user runs it. Only with a control server whose DERP map is ours.
   */
  debugEnv?: boolean;
}

/** A userspace-networking tailscaled with its CLI. */
export class Tailscaled {
  proc: Spawned | undefined;
  private constructor(
    readonly dir: string,
    readonly socket: string,
    /** Its WireGuard/disco UDP port: the only endpoint it advertises is 127.0.0.1 on this port. */
    readonly port: number,
    private readonly opts: TailscaledOptions,
    private readonly cleanup: Cleanup,
  ) {}

  static async start(cleanup: Cleanup, name: string, opts: TailscaledOptions = {}): Promise<Tailscaled> {
    const dir = await tempDir(cleanup, `qs-ts-${name}-`);
    const ts = new Tailscaled(dir, join(dir, 'tailscaled.sock'), await freePort(), opts, cleanup);
    await ts.run();
    return ts;
  }

  /** Starts (or restarts) the daemon and waits for its local API. */
  async run(): Promise<void> {
    const args = [
      '--tun=userspace-networking',
      `--statedir=${this.dir}`,
      this.opts.persist ? `--state=${join(this.dir, 'tailscaled.state')}` : '--state=mem:',
      `--socket=${this.socket}`,
      `--port=${this.port}`,
      '--no-logs-no-support',
    ];
    if (this.opts.socks5Port !== undefined) args.push(`--socks5-server=127.0.0.1:${this.opts.socks5Port}`);
    this.proc = spawnIn(null, TAILSCALED, args, {
      cleanup: this.cleanup,
      env: {
        ...(this.opts.debugEnv === false
          ? {}
          : {
              TS_DEBUG_USE_DERP_HTTP: '1',
              // Advertise only loopback: peers must never send to this machine's interface addresses.
              TS_DEBUG_OMIT_LOCAL_ADDRS: '1',
              TS_DEBUG_PRETENDPOINT: `127.0.0.1:${this.port}`,
            }),
        TS_DISABLE_PORTMAPPER: '1',
        TS_PANIC_IF_HIT_MAIN_CONTROL: '1',
        ...this.opts.env,
      },
    });
    const proc = this.proc;
    await waitFor(
      'tailscaled socket',
      async () => {
        if (!proc.isRunning()) throw new Error(`tailscaled exited:\n${proc.output()}`);
        const r = await exec(TAILSCALE, [`--socket=${this.socket}`, 'status', '--json'], { check: false });
        return r.code === 0 || r.stdout.includes('BackendState') ? true : undefined;
      },
      20_000,
      200,
    );
  }

  cli(args: string[], timeoutMs = 60_000) {
    return exec(TAILSCALE, [`--socket=${this.socket}`, ...args], { timeoutMs });
  }

  async up(server: string, authKey: string, hostname: string): Promise<void> {
    await this.cli([
      'up',
      `--login-server=${server}`,
      `--auth-key=${authKey}`,
      `--hostname=${hostname}`,
      '--accept-dns=false',
      '--timeout=60s',
    ]);
  }

  async status(): Promise<TailscaleStatus> {
    return JSON.parse((await this.cli(['status', '--json'])).stdout) as TailscaleStatus;
  }

  async stop(): Promise<void> {
    await this.proc?.stop();
  }
}

export interface TailscaleStatus {
  BackendState: string;
  Self: { HostName: string; TailscaleIPs: string[]; DNSName: string; [f: string]: unknown };
  Peer?: Record<
    string,
    { HostName: string; TailscaleIPs: string[]; Online: boolean; DNSName: string; [f: string]: unknown }
  >;
  [field: string]: unknown;
}

/** The real peers among `names` (headscale, tailscaled, tailscale, derper) missing from PEERS_BIN. */
export function missingPeers(names: readonly string[]): string[] {
  return names
    .filter((n) => !existsSync(join(PEERS_BIN, n)))
    .map((n) => `${join(PEERS_BIN, n)} (scripts/build-peers.sh)`);
}

/**
 * One of our nodes, up, advertising only its 127.0.0.1 endpoint (no traffic leaves loopback), over
 * plain-HTTP DERP unless `derpHttp: false`; closed and its state removed on cleanup.
 */
export async function startOurNode(
  cleanup: Cleanup,
  opts: { controlURL: string; authKey: string; hostname: string; derpHttp?: boolean },
): Promise<Tailnet> {
  const port = await freePort();
  const tn = new Tailnet({
    hostname: opts.hostname,
    controlURL: opts.controlURL,
    authKey: opts.authKey,
    stateDir: await tempDir(cleanup, 'qs-tn-'),
    derpHttp: opts.derpHttp ?? true,
    port,
    endpoints: [`127.0.0.1:${port}`],
  });
  cleanup.add(`close ${opts.hostname}`, () => tn.close());
  await tn.up();
  return tn;
}
