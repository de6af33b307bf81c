// A tailnet on the NAT lab: Headscale with its embedded DERP and STUN in the lab's internet namespace, one
// reusable auth key, one blob of random bytes for transfers, and nodes (tailscaled or ours) started on new
// hosts behind a site's router. A test file builds one of these and reads as its scenarios.
import { createHash, randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { DERPER, HEADSCALE, missingPeers, tempDir } from '../control-peers.js';
import { type Cleanup, exec, execIn, type Spawned, spawnIn, waitFor } from './exec.js';
import { NatLab, SERVER_V4, type Site } from './natlab.js';
import { type LabControlServer, OurLabControl } from './natlab-control-ours.js';
import { CLI, LabOurs, LabTailscaled, type NodeOptions } from './natlab-nodes.js';
import { sweepLeftovers } from './netns.js';
import { checkRequirements } from './requirements.js';

const CONTROL_PORT = 8080;
const MB = 1024 * 1024;
/** The first node's UDP port; each node gets the next. */
const FIRST_PORT = 41641;

/** What a NAT lab run needs from this machine: root, namespaces, nftables, the real peers and our build. */
export function natlabMissing(): string[] {
  return [
    ...checkRequirements(['root', 'netns', 'ip', 'nft', 'curl', 'sysctl', 'bash']),
    ...missingPeers(['headscale', 'tailscaled', 'tailscale']),
    ...(CLI ? [] : ['dist/cli/main.js (npm run build)']),
  ];
}

/**
 * A second DERP region for `secondRegion` labs: derper in the internet namespace, plain HTTP on :3340 and STUN
 * on :3479. With two STUN servers a node can tell whether its NAT maps each destination to a new port
 * (netcheck's MappingVariesByDestIP needs answers from two regions).
 */
const SECOND_REGION = { id: 998, code: 'lab2', derpPort: 3340, stunPort: 3479 };

/** Headscale in the lab's internet namespace: control, its embedded DERP (region 999) and STUN on :3478. */
export class LabControl implements LabControlServer {
  readonly url = `http://${SERVER_V4}:${CONTROL_PORT}`;
  private constructor(
    readonly config: string,
    readonly proc: Spawned,
    private readonly policyFile: string,
  ) {}

  /** Replaces the ACL policy (HuJSON as JSON) and has Headscale reload it (SIGHUP, hscontrol/app.go). */
  async setPolicy(policy: object): Promise<void> {
    await writeFile(this.policyFile, JSON.stringify(policy, null, 2));
    this.proc.child.kill('SIGHUP');
  }

  /** Headscale's id of the node named `hostname`. */
  async nodeId(hostname: string): Promise<number> {
    const nodes = JSON.parse(await this.cli(['nodes', 'list', '-o', 'json'])) as Array<{
      id: number;
      name: string;
    }>;
    const n = nodes.find((x) => x.name === hostname);
    if (!n) throw new Error(`headscale lists no node ${hostname}: ${nodes.map((x) => x.name).join(', ')}`);
    return n.id;
  }

  /** Approves routes a node advertised, as an admin does (`headscale nodes approve-routes`). */
  async approveRoutes(hostname: string, routes: readonly string[]): Promise<void> {
    const id = await this.nodeId(hostname);
    await this.cli(['nodes', 'approve-routes', '--identifier', String(id), '--routes', routes.join(',')]);
  }

  static async start(lab: NatLab, opts: LabOptions = {}): Promise<LabControl> {
    const dir = await tempDir(lab.cleanup, 'qs-natlab-hs-');
    const config = join(dir, 'config.yaml');
    const policyFile = join(dir, 'policy.hujson');
    if (opts.policy !== undefined) await writeFile(policyFile, JSON.stringify(opts.policy, null, 2));
    const paths = opts.secondRegion ? [await startSecondRegion(lab, dir)] : [];
    await writeFile(
      config,
      [
        `server_url: http://${SERVER_V4}:${CONTROL_PORT}`,
        `listen_addr: ${SERVER_V4}:${CONTROL_PORT}`,
        'metrics_listen_addr: ""',
        'grpc_listen_addr: 127.0.0.1:50443',
        'disable_check_updates: true',
        `unix_socket: ${join(dir, 'headscale.sock')}`,
        'unix_socket_permission: "0770"',
        `noise: { private_key_path: ${join(dir, 'noise_private.key')} }`,
        'prefixes: { v4: 100.64.0.0/10, v6: "fd7a:115c:a1e0::/48", allocation: sequential }',
        `database: { type: sqlite, sqlite: { path: ${join(dir, 'db.sqlite')}, write_ahead_log: true } }`,
        'derp:',
        '  server: { enabled: true, region_id: 999, region_code: lab, region_name: NAT lab, verify_clients: true,',
        `            stun_listen_addr: "0.0.0.0:3478", private_key_path: ${join(dir, 'derp.key')},`,
        `            automatically_add_embedded_derp_region: true, ipv4: ${SERVER_V4} }`,
        '  urls: []',
        `  paths: [${paths.join(', ')}]`,
        '  auto_update_enabled: false',
        'dns: { magic_dns: true, base_domain: natlab.test, override_local_dns: false, nameservers: { global: [] } }',
        'node: { expiry: 0, ephemeral: { inactivity_timeout: 120s } }',
        'log: { level: info, format: text }',
        `policy: { mode: file, path: "${opts.policy === undefined ? '' : policyFile}" }`,
        'logtail: { enabled: false }',
        '',
      ].join('\n'),
    );
    const proc = spawnIn(lab.inet, HEADSCALE, ['-c', config, 'serve'], { cleanup: lab.cleanup });
    const control = new LabControl(config, proc, policyFile);
    await waitFor(
      'headscale /health in the lab',
      async () => {
        if (!proc.isRunning()) throw new Error(`headscale exited:\n${proc.output()}`);
        const r = await execIn(lab.inet, 'curl', ['-fsS', '--max-time', '1', `${control.url}/health`], {
          check: false,
        });
        return r.code === 0 ? true : undefined;
      },
      30_000,
      200,
    );
    return control;
  }

  async cli(args: string[]): Promise<string> {
    return (await exec(HEADSCALE, ['-c', this.config, ...args], { timeoutMs: 20_000 })).stdout;
  }

  /** A reusable pre-auth key of a fresh user. */
  async authKey(user = 'lab'): Promise<string> {
    await this.cli(['users', 'create', user]);
    const users = JSON.parse(await this.cli(['users', 'list', '-o', 'json'])) as {
      id: number;
      name: string;
    }[];
    const id = users.find((u) => u.name === user)?.id;
    if (id === undefined) throw new Error(`headscale did not list user ${user}`);
    return (await this.cli(['preauthkeys', 'create', '-u', String(id), '-e', '1h', '--reusable']))
      .trim()
      .split('\n')
      .pop()!
      .trim();
  }
}

/** Starts derper for {@link SECOND_REGION} and writes the DERP map file Headscale adds it from. */
async function startSecondRegion(lab: NatLab, dir: string): Promise<string> {
  const r = SECOND_REGION;
  const derper = spawnIn(
    lab.inet,
    DERPER,
    ['-a', `${SERVER_V4}:${r.derpPort}`, '-stun-port', String(r.stunPort), '-c', join(dir, 'derper.json')],
    { cleanup: lab.cleanup },
  );
  await waitFor(
    'derper in the lab',
    async () => {
      if (!derper.isRunning()) throw new Error(`derper exited:\n${derper.output()}`);
      const url = `http://${SERVER_V4}:${r.derpPort}/derp/probe`;
      const ok = await execIn(lab.inet, 'curl', ['-fsS', '--max-time', '1', url], { check: false });
      return ok.code === 0 ? true : undefined;
    },
    20_000,
    200,
  );
  const file = join(dir, 'derp-second.yaml');
  await writeFile(
    file,
    `regions:\n  ${r.id}:\n    regionid: ${r.id}\n    regioncode: ${r.code}\n    regionname: NAT lab 2\n    nodes:\n` +
      `      - { name: ${r.id}a, regionid: ${r.id}, hostname: ${SERVER_V4}, ipv4: ${SERVER_V4}, ipv6: "none", ` +
      `stunport: ${r.stunPort}, derpport: ${r.derpPort} }\n`,
  );
  return file;
}

/** What a lab's control server is given. */
export interface LabOptions {
  /** Whose control server: Headscale (default) or ours (`control serve --derp`; no `secondRegion`). */
  control?: 'headscale' | 'quackscale';
  /** A second DERP region (derper), for netcheck. */
  secondRegion?: boolean;
  /** An ACL policy file (JSON is HuJSON) instead of none (allow all); replace it with `setPolicy`. */
  policy?: object;
}

export interface BlobFile {
  path: string;
  sha256(mb: number): string;
}

/** A file of `mb` MiB of random bytes in a temp dir, with the sha256 of each whole-MiB prefix on demand. */
export async function blobFile(cleanup: Cleanup, mb: number): Promise<BlobFile> {
  const dir = await tempDir(cleanup, 'qs-natlab-blob-');
  const data = randomBytes(mb * MB);
  const path = join(dir, 'blob');
  await writeFile(path, data);
  const cache = new Map<number, string>();
  return {
    path,
    sha256(n: number): string {
      let s = cache.get(n);
      if (s === undefined) {
        s = createHash('sha256')
          .update(data.subarray(0, n * MB))
          .digest('hex');
        cache.set(n, s);
      }
      return s;
    },
  };
}

/** The lab, its control server and the nodes started on it. */
export class TailnetLab {
  private nextPort = FIRST_PORT;
  private constructor(
    readonly lab: NatLab,
    readonly control: LabControlServer,
    readonly authKey: string,
    readonly blob: BlobFile,
  ) {}

  /**
   * Sweeps what crashed runs left, then builds the lab, starts Headscale (and with `secondRegion` a second
   * DERP region) and writes a blob of `blobMB` MiB.
   */
  static async create(cleanup: Cleanup, blobMB: number, opts: LabOptions = {}): Promise<TailnetLab> {
    await sweepLeftovers();
    const lab = await NatLab.create(cleanup);
    const control =
      opts.control === 'quackscale'
        ? await OurLabControl.start(lab, opts.policy ?? {})
        : await LabControl.start(lab, opts);
    return new TailnetLab(lab, control, await control.authKey(), await blobFile(cleanup, blobMB));
  }

  get cleanup(): Cleanup {
    return this.lab.cleanup;
  }

  /** A new UDP port for a node (each node its own, so that a shared router never has to remap one). */
  port(): number {
    return this.nextPort++;
  }

  private options(more: Pick<NodeOptions, 'upArgs' | 'tun'> = {}): NodeOptions {
    return {
      controlURL: this.control.url,
      authKey: this.authKey,
      port: this.port(),
      blob: this.blob.path,
      ...more,
    };
  }

  /** A real tailscaled on a new host behind `site`, logged in (with `upArgs` for routes, `tun` for a TUN device). */
  async tailscaled(
    site: Site,
    name: string,
    more: Pick<NodeOptions, 'upArgs' | 'tun'> = {},
  ): Promise<LabTailscaled> {
    return LabTailscaled.start(this.cleanup, await this.lab.addHost(site, name), name, this.options(more));
  }

  /** Our node on a new host behind `site`, up (with `upArgs`: more `quackscale up` flags). */
  async ours(site: Site, name: string, more: Pick<NodeOptions, 'upArgs'> = {}): Promise<LabOurs> {
    return LabOurs.start(this.cleanup, await this.lab.addHost(site, name), name, this.options(more));
  }
}
