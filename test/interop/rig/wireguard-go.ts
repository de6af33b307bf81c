// wireguard-go as a real WireGuard peer inside a network namespace: a TUN device driven by the reference
// userspace implementation, configured over its UAPI socket and observed with `wg show … dump`.
import { rm, stat } from 'node:fs/promises';
import { createConnection } from 'node:net';
import { type Cleanup, exec, execIn, type Spawned, spawnIn, waitFor } from './exec.js';
import { ipIn, WG_RUN_DIR } from './netns.js';

export interface WgKeyPair {
  /** Base64, as `wg genkey` prints it. */
  privateKey: string;
  publicKey: string;
}

export async function generateKeyPair(): Promise<WgKeyPair> {
  const privateKey = (await exec('wg', ['genkey'])).stdout.trim();
  return { privateKey, publicKey: await publicKeyOf(privateKey) };
}

export async function publicKeyOf(privateKey: string): Promise<string> {
  return (await exec('wg', ['pubkey'], { input: `${privateKey}\n` })).stdout.trim();
}

export interface WgPeerConfig {
  publicKey: string;
  /** CIDRs routed to this peer, e.g. ['10.200.1.2/32', 'fd00:200::2/128']. */
  allowedIps: string[];
  /** host:port, IPv6 as [addr]:port. */
  endpoint?: string;
  persistentKeepalive?: number;
  presharedKey?: string;
}

/** wireguard-go's LOG_LEVEL: 'verbose' logs handshakes and timers, never per data packet. */
export type WgLogLevel = 'verbose' | 'error' | 'silent';

export interface WireguardGoOptions {
  /** Namespace to run in; null for the current one. */
  ns: string | null;
  /** Unique across namespaces: the UAPI socket path /var/run/wireguard/<ifname>.sock is global. */
  ifname: string;
  privateKey: string;
  listenPort: number;
  /** Inner addresses with prefix length, IPv4 and/or IPv6. */
  addresses: string[];
  mtu?: number;
  peers?: WgPeerConfig[];
  logLevel?: WgLogLevel;
  /** Stops the process and removes its socket. */
  cleanup: Cleanup;
}

export interface WgPeerStatus {
  publicKey: string;
  hasPresharedKey: boolean;
  endpoint: string | null;
  allowedIps: string[];
  /** Unix seconds of the latest handshake; 0 = never. */
  latestHandshake: number;
  rx: number;
  tx: number;
  persistentKeepalive: number | null;
}

export interface WgInterfaceStatus {
  publicKey: string;
  listenPort: number;
  peers: WgPeerStatus[];
}

/** Parses `wg show <if> dump` (one interface: its line first, then one line per peer, tab-separated). */
export function parseWgDump(text: string): WgInterfaceStatus {
  const lines = text.split('\n').filter((line) => line.trim() !== '');
  const head = lines[0]?.split('\t');
  if (head === undefined || head.length < 4) throw new Error(`unexpected wg dump: ${JSON.stringify(text)}`);
  const peers = lines.slice(1).map((line): WgPeerStatus => {
    const f = line.split('\t');
    if (f.length < 8) throw new Error(`unexpected wg dump peer line: ${JSON.stringify(line)}`);
    return {
      publicKey: f[0]!,
      hasPresharedKey: f[1] !== '(none)',
      endpoint: f[2] === '(none)' ? null : f[2]!,
      allowedIps: f[3] === '(none)' ? [] : f[3]!.split(','),
      latestHandshake: Number(f[4]),
      rx: Number(f[5]),
      tx: Number(f[6]),
      persistentKeepalive: f[7] === 'off' ? null : Number(f[7]),
    };
  });
  return { publicKey: head[1]!, listenPort: Number(head[2]), peers };
}

function hexKey(base64: string): string {
  const raw = Buffer.from(base64, 'base64');
  if (raw.length !== 32) throw new Error(`not a 32-byte base64 key: ${base64}`);
  return raw.toString('hex');
}

function peerUapi(peer: WgPeerConfig): string[] {
  const lines = [`public_key=${hexKey(peer.publicKey)}`, 'replace_allowed_ips=true'];
  if (peer.presharedKey !== undefined) lines.push(`preshared_key=${hexKey(peer.presharedKey)}`);
  if (peer.endpoint !== undefined) lines.push(`endpoint=${peer.endpoint}`);
  if (peer.persistentKeepalive !== undefined)
    lines.push(`persistent_keepalive_interval=${peer.persistentKeepalive}`);
  for (const cidr of peer.allowedIps) lines.push(`allowed_ip=${cidr}`);
  return lines;
}

/** One UAPI exchange (wireguard.com/xplatform): a request ending in a blank line, an answer ending likewise. */
export function uapiRequest(socketPath: string, request: string, timeoutMs = 5000): Promise<string> {
  return new Promise((resolve, reject) => {
    const sock = createConnection(socketPath);
    let answer = '';
    const timer = setTimeout(
      () => sock.destroy(new Error(`UAPI ${socketPath}: no answer in ${timeoutMs} ms`)),
      timeoutMs,
    );
    sock.setEncoding('utf8');
    sock.on('connect', () => sock.write(request));
    sock.on('data', (chunk: string) => {
      answer += chunk;
      if (answer.endsWith('\n\n')) sock.end();
    });
    sock.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    sock.on('close', () => {
      clearTimeout(timer);
      const errno = /^errno=(-?\d+)$/m.exec(answer)?.[1];
      if (errno === undefined)
        reject(new Error(`UAPI ${socketPath}: incomplete answer ${JSON.stringify(answer)}`));
      else if (errno !== '0')
        reject(new Error(`UAPI ${socketPath}: errno=${errno} for ${request.split('\n')[0]}`));
      else resolve(answer);
    });
  });
}

export class WireguardGo {
  private stopped = false;

  constructor(
    readonly ns: string | null,
    readonly ifname: string,
    readonly publicKey: string,
    readonly listenPort: number,
    readonly addresses: readonly string[],
    readonly process: Spawned,
  ) {}

  get uapiPath(): string {
    return `${WG_RUN_DIR}/${this.ifname}.sock`;
  }

  /** Adds the peer, or updates it (its allowed IPs are replaced). */
  async setPeer(peer: WgPeerConfig): Promise<void> {
    await uapiRequest(this.uapiPath, ['set=1', ...peerUapi(peer), '', ''].join('\n'));
  }

  async removePeer(publicKey: string): Promise<void> {
    await uapiRequest(
      this.uapiPath,
      ['set=1', `public_key=${hexKey(publicKey)}`, 'remove=true', '', ''].join('\n'),
    );
  }

  async show(): Promise<WgInterfaceStatus> {
    return parseWgDump((await execIn(this.ns, 'wg', ['show', this.ifname, 'dump'])).stdout);
  }

  async peer(publicKey: string): Promise<WgPeerStatus | undefined> {
    return (await this.show()).peers.find((p) => p.publicKey === publicKey);
  }

  /** Resolves with the peer's status once it has completed a handshake. */
  async waitForHandshake(publicKey: string, timeoutMs = 10_000): Promise<WgPeerStatus> {
    return waitFor(
      `a handshake of ${this.ifname} with ${publicKey}`,
      async () => {
        const p = await this.peer(publicKey);
        return p !== undefined && p.latestHandshake > 0 ? p : undefined;
      },
      timeoutMs,
      100,
    );
  }

  /** wireguard-go's own log (stdout and stderr), for failure messages. */
  log(): string {
    return this.process.output();
  }

  /** Ends the process (SIGTERM makes it remove its socket and TUN) and removes a socket left by SIGKILL. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    await this.process.stop();
    await rm(this.uapiPath, { force: true });
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw err;
  }
}

/**
 * Starts `wireguard-go -f <ifname>` (foreground, so the pid is the daemon's own), waits for its UAPI socket,
 * sets key, port and peers, then gives the TUN its addresses and MTU and brings it up.
 */
export async function startWireguardGo(opts: WireguardGoOptions): Promise<WireguardGo> {
  const socketPath = `${WG_RUN_DIR}/${opts.ifname}.sock`;
  if (await exists(socketPath)) {
    throw new Error(
      `${socketPath} exists: another wireguard-go uses ${opts.ifname}, or a run left it (sweep)`,
    );
  }
  const publicKey = await publicKeyOf(opts.privateKey);
  const proc = spawnIn(opts.ns, 'wireguard-go', ['-f', opts.ifname], {
    env: { LOG_LEVEL: opts.logLevel ?? 'verbose' },
  });
  const wg = new WireguardGo(opts.ns, opts.ifname, publicKey, opts.listenPort, opts.addresses, proc);
  opts.cleanup.add(`stop wireguard-go ${opts.ifname}`, () => wg.stop());
  try {
    await waitFor(`${socketPath}`, async () => {
      if (!proc.isRunning()) throw new Error('wireguard-go exited');
      return (await exists(socketPath)) ? true : undefined;
    });
    const request = [
      'set=1',
      `private_key=${hexKey(opts.privateKey)}`,
      `listen_port=${opts.listenPort}`,
      'replace_peers=true',
      ...(opts.peers ?? []).flatMap(peerUapi),
      '',
      '',
    ];
    await uapiRequest(socketPath, request.join('\n'));
    for (const cidr of opts.addresses) {
      // No duplicate address detection on a point-to-point TUN: the address is usable at once.
      await ipIn(opts.ns, [
        'addr',
        'add',
        cidr,
        'dev',
        opts.ifname,
        ...(cidr.includes(':') ? ['nodad'] : []),
      ]);
    }
    await ipIn(opts.ns, ['link', 'set', opts.ifname, 'mtu', String(opts.mtu ?? 1420), 'up']);
  } catch (err) {
    const why = err instanceof Error ? err.message : String(err);
    throw new Error(
      `starting wireguard-go ${opts.ifname}: ${why}\n--- wireguard-go log ---\n${proc.output()}`,
      {
        cause: err,
      },
    );
  }
  return wg;
}
