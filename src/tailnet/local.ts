/**
 * The embedded default: a whole tailnet on one machine, with no account and nothing to
 * install — our control server and our DERP relay (with STUN) in this process, the DERP map
 * pointing at the relay. Nodes join with `authKey()`, or interactively (`tn.login()`) with the
 * AuthURL they report approved by `approve(url)`. The relay speaks TLS with a self-signed
 * certificate kept in the state dir and pinned in the DERP map (`CertName: "sha256-raw:…"`), so
 * nodes (ours, or a real tailscaled) need no flag; it also answers plain HTTP on the same port
 * for nodes set to `derpHttp` / TS_DEBUG_USE_DERP_HTTP=1.
 *
 * @example
 * const local = await startLocalTailnet({ stateDir: '/tmp/tn' });
 * const tn = new Tailnet({ hostname: 'a', controlURL: local.controlURL, authKey: await local.authKey(),
 *   stateDir: '/tmp/a' });
 */
import { mkdir } from 'node:fs/promises';
import { isIPv4 } from 'node:net';
import { join } from 'node:path';
import type { ApprovedNode, ApproveOptions } from '../control/server/interactive.js';
import type { PingAnswer } from '../control/server/ping.js';
import type { AclPolicy } from '../control/server/policy.js';
import { ControlServer } from '../control/server/server.js';
import type { DERPMap } from '../control/tailcfg.js';
import { DerpHttpServer } from '../derp/http-server.js';
import { otherFamily } from '../derp/listen.js';
import { loadOrCreateCertificate } from '../derp/self-signed.js';

export interface LocalTailnetOptions {
  /** Where the control server keeps its state (nodes, keys); survives restarts. */
  stateDir: string;
  /** Address to listen on (default 127.0.0.1). */
  host?: string;
  /** Control server port (default: any free one). */
  controlPort?: number;
  /** DERP relay port (default: any free one). */
  derpPort?: number;
  /** STUN port (default: any free one; -1 disables STUN). */
  stunPort?: number;
  /** MagicDNS suffix (default `tailnet.internal`). */
  baseDomain?: string;
  /** ACL policy; allow-all without one. */
  policy?: AclPolicy;
}

export interface LocalTailnet {
  controlURL: string;
  derpURL: string;
  derpMap: DERPMap;
  /** A new pre-auth key (reusable by default). */
  authKey(opts?: { reusable?: boolean; ephemeral?: boolean }): Promise<string>;
  /** Approves an interactive login by its AuthURL (or id), as the admin would. */
  approve(authURL: string, opts?: ApproveOptions): Promise<ApprovedNode>;
  /** Rejects an interactive login by its AuthURL (or id). */
  reject(authURL: string): void;
  /** Sends a node a PingRequest and resolves with its answer (ControlServer.pingNode). */
  pingNode(nodeId: number, opts?: Parameters<ControlServer['pingNode']>[1]): Promise<PingAnswer | undefined>;
  close(): Promise<void>;
}

/**
 * The DERP map of our relay `derp` listening on `host`, as region 900 "local": its certificate
 * pinned by `certName`, and its IPv6 loopback too when it listens there (a relay on 127.0.0.1
 * also binds ::1 where the machine has it, so IPv6 clients and STUN reach it).
 */
export function localDerpMap(derp: DerpHttpServer, host: string, certName?: string): DERPMap {
  const v6 = isIPv4(host) && derp.addresses.some((a) => a.startsWith('[')) ? otherFamily(host) : undefined;
  return {
    Regions: {
      '900': {
        RegionID: 900,
        RegionCode: 'local',
        RegionName: 'quackscale embedded DERP',
        Nodes: [
          {
            Name: '900a',
            RegionID: 900,
            HostName: host,
            IPv4: host,
            IPv6: v6 ?? 'none',
            DERPPort: derp.port,
            STUNPort: derp.stun?.port ?? -1,
            ...(certName ? { CertName: certName } : {}),
          },
        ],
      },
    },
  } as DERPMap;
}

/** Starts the embedded control server and DERP relay. */
export async function startLocalTailnet(opts: LocalTailnetOptions): Promise<LocalTailnet> {
  const host = opts.host ?? '127.0.0.1';
  await mkdir(opts.stateDir, { recursive: true, mode: 0o700 });
  const stunPort = opts.stunPort === -1 ? undefined : (opts.stunPort ?? 0);
  const tls = await loadOrCreateCertificate(opts.stateDir, host);
  const derp = await DerpHttpServer.listen({
    host,
    port: opts.derpPort ?? 0,
    stunPort,
    tls,
    acceptPlainHttp: true,
  });
  const derpMap = localDerpMap(derp, host, tls.certName);
  let control: ControlServer | undefined;
  try {
    control = await ControlServer.create({
      stateDir: join(opts.stateDir, 'control'),
      derpMap,
      baseDomain: opts.baseDomain,
      policy: opts.policy,
    });
    const controlURL = await control.listen(opts.controlPort ?? 0, host);
    const c = control;
    return {
      controlURL,
      derpURL: derp.url,
      derpMap,
      authKey: (o = {}) => c.createAuthKey({ reusable: o.reusable ?? true, ephemeral: o.ephemeral ?? false }),
      approve: (url, o) => c.approve(url, o),
      reject: (url) => c.reject(url),
      pingNode: (id, o) => c.pingNode(id, o),
      close: async () => {
        await c.close();
        await derp.close();
      },
    };
  } catch (err) {
    await control?.close();
    await derp.close();
    throw err;
  }
}
