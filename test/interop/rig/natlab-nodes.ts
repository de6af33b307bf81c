// Tailnet nodes on NAT lab hosts (natlab.ts): real tailscaled (userspace networking) or our node (the CLI's
// `up`), each with a blob server (blob-server.mjs) on 127.0.0.1:BLOB_PORT that tailnet TCP to that port
// reaches, and a SOCKS5 proxy through which curl on the host dials the tailnet. The same questions (path,
// ping, transfers) are asked of both kinds. Nothing advertises endpoints by hand: every node finds its own
// with STUN through its router.
import { existsSync } from 'node:fs';
import http from 'node:http';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { TAILSCALE, TAILSCALED, tempDir } from '../control-peers.js';
import { type Cleanup, exec, execIn, type Spawned, spawnIn, waitFor } from './exec.js';
import type { Host } from './natlab.js';

const here = dirname(fileURLToPath(import.meta.url));
/** The repository root, from test/interop/rig (vitest) or dist-bench/test/interop/rig (bench). */
const root = resolve(here, '../../..');
/** Our CLI: the bench's own build of src, else the package build (`npm run build`). */
export const CLI = [join(root, 'src/cli/main.js'), join(root, 'dist/cli/main.js')].find(existsSync);
export const BLOB_SERVER = [
  join(here, 'blob-server.mjs'),
  resolve(root, '../test/interop/rig/blob-server.mjs'),
].find(existsSync)!;

/** Where every host's blob server listens, and so the tailnet port that serves each node's blob. */
export const BLOB_PORT = 8080;
/** Each node's SOCKS5 proxy on its host's loopback: how curl there dials the tailnet. */
export const SOCKS_PORT = 1080;
const MB = 1024 * 1024;

export interface NodeOptions {
  controlURL: string;
  authKey: string;
  /** Its WireGuard/disco UDP port: distinct per host, so that a shared router never has to remap one. */
  port: number;
  /** The file its blob server serves (and uploads read from). */
  blob: string;
  /** More `tailscale up` flags (tailscaled) or `quackscale up` flags (ours): routes, exit nodes. */
  upArgs?: string[];
  /** tailscaled with a TUN device in its namespace instead of userspace networking: the host's own programs then reach the tailnet and its routes. */
  tun?: boolean;
}

export interface Transfer {
  bytes: number;
  sha256: string;
  ms: number;
}

/** A node in the lab, ours or tailscaled: the same questions asked of both. */
export abstract class LabNode {
  protected proc: Spawned | undefined;
  protected blob: Spawned | undefined;
  private blobPath = '';
  constructor(
    readonly name: string,
    readonly host: Host,
    /** Its WireGuard/disco UDP port. */
    readonly port: number,
    protected readonly cleanup: Cleanup,
    /** Its state dir (and tailscaled's socket). */
    readonly dir: string,
  ) {}

  /** Its tailnet IPv4 address. */
  abstract ip(): Promise<string>;
  /** Whether it has `peer` in its netmap, reachable at least over DERP. */
  abstract knows(peer: LabNode): Promise<boolean>;
  /** The direct UDP address its packets to `peer` go to now, or undefined while they go over DERP. */
  abstract directAddr(peer: LabNode): Promise<string | undefined>;
  /** A disco ping to `peer`: the path of the pong ("DERP(lab)" or an ip:port). */
  abstract ping(peer: LabNode): Promise<string>;
  /** The curl `-x` value for its SOCKS5 proxy. */
  protected abstract socks(): string;

  /** The daemon's process id (for a bench reading its CPU time), once started. */
  get pid(): number | undefined {
    return this.proc?.pid;
  }

  /** Its log so far, for a failing test's message. */
  output(): string {
    return this.proc?.output() ?? '';
  }

  async stop(): Promise<void> {
    await this.proc?.stop();
    await this.blob?.stop();
  }

  /** Starts this host's blob server, serving `file`. */
  protected async serveBlob(file: string): Promise<void> {
    this.blobPath = file;
    const blob = spawnIn(this.host.ns, process.execPath, [BLOB_SERVER, String(BLOB_PORT), file], {
      cleanup: this.cleanup,
    });
    this.blob = blob;
    await waitFor(
      `blob server on ${this.name}`,
      () => {
        if (!blob.isRunning()) throw new Error(`blob server exited: ${blob.output()}`);
        return blob.output().includes('blob server on') ? true : undefined;
      },
      10_000,
      50,
    );
  }

  /** Pings `peer` until packets to it go direct; the address, or a thrown timeout. */
  async waitDirect(peer: LabNode, timeoutMs = 30_000): Promise<string> {
    return waitFor(
      `${this.name} → ${peer.name} direct`,
      async () => {
        await this.ping(peer).catch(() => undefined);
        return this.directAddr(peer);
      },
      timeoutMs,
      250,
    );
  }

  /** Fetches `mb` MiB of `peer`'s blob through this node: what arrived, by curl through its SOCKS5. */
  async download(peer: LabNode, mb: number, opts: { limitRate?: string } = {}): Promise<Transfer> {
    const url = `http://${await peer.ip()}:${BLOB_PORT}/blob?mb=${mb}`;
    const limit = opts.limitRate ? ['--limit-rate', opts.limitRate] : [];
    return this.curl([...limit, '-o', '-', url], `| ${HASH_STDIN}`, mb);
  }

  /** Sends the first `mb` MiB of this host's blob to `peer`'s blob server: what `peer` received. */
  async upload(peer: LabNode, mb: number): Promise<Transfer> {
    const url = `http://${await peer.ip()}:${BLOB_PORT}/up`;
    return this.curl(['-T', '-', url], '', mb, `head -c ${mb * MB} '${this.blobPath}' | `);
  }

  private async curl(args: string[], pipe: string, mb: number, feed = ''): Promise<Transfer> {
    const quoted = args.map((a) => `'${a}'`).join(' ');
    // Generous enough to fail only when broken: DERP-relayed transfers here run at several MB/s.
    const maxS = 30 + mb * 2;
    const script = `set -o pipefail; ${feed}curl -sS --fail --max-time ${maxS} -x '${this.socks()}' ${quoted} ${pipe}`;
    const t0 = performance.now();
    const r = await execIn(this.host.ns, 'bash', ['-c', script], { timeoutMs: (maxS + 10) * 1000 });
    const ms = performance.now() - t0;
    const m = /^(\d+) ([0-9a-f]{64})$/.exec(r.stdout.trim());
    if (!m) throw new Error(`${this.name}: transfer answered ${JSON.stringify(r.stdout + r.stderr)}`);
    return { bytes: Number(m[1]), sha256: m[2]!, ms };
  }

  /** Waits until this node and `peer` have each other in their netmaps. */
  async meet(peer: LabNode, timeoutMs = 30_000): Promise<void> {
    await waitFor(
      `${this.name} and ${peer.name} see each other`,
      async () => ((await this.knows(peer)) && (await peer.knows(this)) ? true : undefined),
      timeoutMs,
      200,
    );
  }
}

/** `<bytes> <sha256>` of stdin. */
const HASH_STDIN =
  `'${process.execPath}' -e "const h=require('crypto').createHash('sha256');let n=0;` +
  `process.stdin.on('data',d=>{h.update(d);n+=d.length}).on('end',()=>console.log(n+' '+h.digest('hex')))"`;

export interface TailscaleStatus {
  BackendState: string;
  Self: { HostName: string; TailscaleIPs: string[] };
  Peer?: Record<string, { HostName: string; TailscaleIPs: string[]; CurAddr: string; Relay: string }>;
}

/** A real tailscaled (userspace networking) on a lab host. */
export class LabTailscaled extends LabNode {
  static async start(cleanup: Cleanup, host: Host, name: string, opts: NodeOptions): Promise<LabTailscaled> {
    const dir = await tempDir(cleanup, `qs-natlab-${name}-`);
    const ts = new LabTailscaled(name, host, opts.port, cleanup, dir);
    await ts.serveBlob(opts.blob);
    const args = [
      opts.tun ? '--tun=tailscale0' : '--tun=userspace-networking',
      `--statedir=${dir}`,
      '--state=mem:',
      `--socket=${join(dir, 'tailscaled.sock')}`,
      `--port=${opts.port}`,
      `--socks5-server=127.0.0.1:${SOCKS_PORT}`,
      '--no-logs-no-support',
    ];
    ts.proc = spawnIn(host.ns, TAILSCALED, args, {
      cleanup,
      env: { TS_DEBUG_USE_DERP_HTTP: '1', TS_DISABLE_PORTMAPPER: '1', TS_PANIC_IF_HIT_MAIN_CONTROL: '1' },
    });
    const proc = ts.proc;
    await waitFor(
      `tailscaled ${name} socket`,
      async () => {
        if (!proc.isRunning()) throw new Error(`tailscaled exited:\n${proc.output()}`);
        const r = await ts.cli(['status', '--json'], false);
        return r.code === 0 || r.stdout.includes('BackendState') ? true : undefined;
      },
      20_000,
      200,
    );
    await ts.cli([
      'up',
      `--login-server=${opts.controlURL}`,
      `--auth-key=${opts.authKey}`,
      `--hostname=${name}`,
      '--accept-dns=false',
      '--timeout=60s',
      ...(opts.tun ? ['--netfilter-mode=off'] : []),
      ...(opts.upArgs ?? []),
    ]);
    return ts;
  }

  cli(args: string[], check = true) {
    return exec(TAILSCALE, [`--socket=${join(this.dir, 'tailscaled.sock')}`, ...args], {
      timeoutMs: 60_000,
      check,
    });
  }

  async status(): Promise<TailscaleStatus> {
    return JSON.parse((await this.cli(['status', '--json'])).stdout) as TailscaleStatus;
  }

  async peerStatus(peer: LabNode) {
    return Object.values((await this.status()).Peer ?? {}).find((p) => p.HostName === peer.name);
  }

  async ip(): Promise<string> {
    return (await this.status()).Self.TailscaleIPs.find((a) => a.includes('.'))!;
  }

  /** The endpoints control last sent it for `peer` (`tailscale debug netmap`). */
  async endpointsOf(peer: LabNode): Promise<string[]> {
    const nm = JSON.parse((await this.cli(['debug', 'netmap'])).stdout) as {
      Peers?: Array<{ Name: string; Endpoints?: string[] }>;
    };
    return nm.Peers?.find((p) => p.Name.startsWith(`${peer.name}.`))?.Endpoints ?? [];
  }

  async knows(peer: LabNode): Promise<boolean> {
    return Boolean((await this.peerStatus(peer))?.Relay);
  }

  async directAddr(peer: LabNode): Promise<string | undefined> {
    return (await this.peerStatus(peer))?.CurAddr || undefined;
  }

  async ping(peer: LabNode): Promise<string> {
    const r = await this.cli(
      ['ping', '-c', '1', '--until-direct=false', '--timeout=5s', await peer.ip()],
      false,
    );
    const via = / via (\S+)/.exec(r.stdout)?.[1];
    if (!via) throw new Error(`${this.name}: tailscale ping ${peer.name}: ${r.stdout}${r.stderr}`);
    return via;
  }

  protected socks(): string {
    return `socks5h://127.0.0.1:${SOCKS_PORT}`;
  }
}

interface OurPeer {
  hostname: string;
  addresses: string[];
  path: string;
}

/** Our node on a lab host: `quackscale up` with --serve BLOB_PORT and --socks5, talked to over its local API. */
export class LabOurs extends LabNode {
  private socksUrl = '';

  static async start(cleanup: Cleanup, host: Host, name: string, opts: NodeOptions): Promise<LabOurs> {
    if (!CLI) throw new Error('no build of our CLI: run npm run build');
    const dir = await tempDir(cleanup, `qs-natlab-${name}-`);
    const node = new LabOurs(name, host, opts.port, cleanup, dir);
    await node.serveBlob(opts.blob);
    // QS_CPU_PROFILE=DIR: V8's profile of the node, written to DIR/<name>.cpuprofile when it stops.
    const profileDir = process.env.QS_CPU_PROFILE;
    const profile = profileDir
      ? ['--cpu-prof', `--cpu-prof-dir=${profileDir}`, `--cpu-prof-name=${name}.cpuprofile`]
      : [];
    const args = [
      ...profile,
      CLI,
      'up',
      '--control-url',
      opts.controlURL,
      '--authkey',
      opts.authKey,
      '--state-dir',
      dir,
    ];
    args.push('--hostname', name, '--port', String(opts.port), '--derp-http', '--verbose');
    args.push('--serve', String(BLOB_PORT), '--socks5', String(SOCKS_PORT), ...(opts.upArgs ?? []));
    node.proc = spawnIn(host.ns, process.execPath, args, { cleanup });
    const proc = node.proc;
    node.socksUrl = await waitFor(
      `our node ${name} up`,
      () => {
        if (!proc.isRunning()) throw new Error(`our node exited:\n${proc.output()}`);
        return /socks5 proxy: (\S+)/.exec(proc.output())?.[1];
      },
      60_000,
      100,
    );
    // The local API socket comes up just after the proxies are printed.
    await waitFor(
      `our node ${name} local API`,
      () => node.api('GET', '/status').catch(() => undefined),
      10_000,
      50,
    );
    return node;
  }

  /** A call to the node's local API (what `quackscale status|ping` use), over its unix socket. */
  api<T>(method: string, path: string): Promise<T> {
    return new Promise((resolve, reject) => {
      const req = http.request({ socketPath: join(this.dir, 'quackscale.sock'), method, path }, (res) => {
        let body = '';
        res.setEncoding('utf8').on('data', (d: string) => (body += d));
        res.on('end', () => {
          const parsed = JSON.parse(body) as T & { error?: string };
          if ((res.statusCode ?? 500) >= 400)
            reject(new Error(`${this.name}: ${parsed.error ?? res.statusCode}`));
          else resolve(parsed);
        });
      });
      req.on('error', reject);
      req.end();
    });
  }

  /** `quackscale <args>` against this node (status, ping), as a user runs it. */
  async cli(args: string[]): Promise<string> {
    const r = await exec(process.execPath, [CLI!, ...args, '--state-dir', this.dir], { timeoutMs: 30_000 });
    return r.stdout;
  }

  private async peer(peer: LabNode): Promise<OurPeer | undefined> {
    const st = await this.api<{ peers: OurPeer[] }>('GET', '/status');
    return st.peers.find((p) => p.hostname === peer.name);
  }

  async ip(): Promise<string> {
    const st = await this.api<{ self: { addresses: string[] } }>('GET', '/status');
    return st.self.addresses.find((a) => a.includes('.'))!;
  }

  async knows(peer: LabNode): Promise<boolean> {
    const p = await this.peer(peer);
    return p !== undefined && p.path !== 'none';
  }

  async directAddr(peer: LabNode): Promise<string | undefined> {
    const path = (await this.peer(peer))?.path ?? '';
    return path.startsWith('direct ') ? path.slice('direct '.length) : undefined;
  }

  async ping(peer: LabNode): Promise<string> {
    const r = await this.api<{ via: string }>('POST', `/ping?host=${await peer.ip()}`);
    return r.via;
  }

  protected socks(): string {
    return this.socksUrl;
  }
}
