/**
 * The embedded default: a whole tailnet on one machine, with no account and nothing to
 * install — our control server and our DERP relay (with STUN) in this process, the DERP map
 * pointing at the relay. Nodes join with `authKey()`, or interactively (`tn.login()`) with the
 * AuthURL they report approved by `approve(url)`. The relay speaks TLS with a self-signed
 * certificate kept in the state dir and pinned in the DERP map (`CertName: "sha256-raw:…"`), so
 * nodes (ours, or a real tailscaled) need no flag; it also answers plain HTTP on the same port
 * for nodes set to `derpHttp` / TS_DEBUG_USE_DERP_HTTP=1. The same function serves
 * `quackscale control serve` (its own state layout, an optional relay) and `quackscale_serve()`
 * (nodes and keys in DuckDB tables): one coordinator, three front ends.
 *
 * @example
 * const local = await startLocalTailnet({ stateDir: '/tmp/tn' });
 * const tn = new Tailnet({ hostname: 'a', controlURL: local.controlURL, authKey: await local.authKey(),
 *   stateDir: '/tmp/a' });
 */
import { mkdir } from 'node:fs/promises';
import { isIPv4 } from 'node:net';
import { join } from 'node:path';
import type { ControlLogger } from '../control/logger.js';
import type { ApprovedNode, ApproveOptions } from '../control/server/interactive.js';
import type { NoiseHttpLimits } from '../control/server/noise-http.js';
import type { PingAnswer } from '../control/server/ping.js';
import type { AclPolicy } from '../control/server/policy.js';
import { ControlServer } from '../control/server/server.js';
import type { AuthKeyBackend, ControlStateStore } from '../control/server/state-store.js';
import type { DERPMap } from '../control/tailcfg.js';
import { DerpHttpServer } from '../derp/http-server.js';
import { otherFamily } from '../derp/listen.js';
import { loadOrCreateCertificate } from '../derp/self-signed.js';
import type { ConnectionLimits } from '../guard/guard.js';

export interface LocalTailnetOptions {
  /** Where the DERP relay's certificate lives, and (by default) the control server's state; survives restarts. */
  stateDir: string;
  /** The control server's state directory (default `<stateDir>/control`). */
  controlStateDir?: string;
  /** Address to listen on (default 127.0.0.1). */
  host?: string;
  /** Control server port (default: any free one). */
  controlPort?: number;
  /** Run our DERP relay (and STUN) beside the control server (default true). */
  derp?: boolean;
  /** DERP relay port (default: any free one). */
  derpPort?: number;
  /** Where nodes reach the relay, when `host` is a wildcard such as 0.0.0.0 (default `host`). */
  derpMapHost?: string;
  /** STUN port (default: any free one; -1 disables STUN). */
  stunPort?: number;
  /** The DERP map to hand out without a relay of ours (`derp: false`; default: none). */
  derpMap?: DERPMap;
  /** MagicDNS suffix (default `tailnet.internal`). */
  baseDomain?: string;
  /** ACL policy; allow-all without one. */
  policy?: AclPolicy;
  /** The URL clients reach the control server at, for login URLs (default: where it listens). */
  serverURL?: string;
  /** The control server's log (default: silent). */
  logger?: ControlLogger;
  /** Where nodes and the Noise key are kept (default: a file in the control state directory). */
  store?: ControlStateStore;
  /** Where pre-auth keys are kept (default: files in the control state directory). */
  authKeys?: AuthKeyBackend;
  /** Connection limits and deadlines of both servers (docs/server-limits.md; default the documented ones). */
  limits?: Partial<ConnectionLimits>;
  /** The control server's limits inside Noise: deadlines, HTTP/2 streams, body size. */
  noiseLimits?: Partial<NoiseHttpLimits>;
  /** Streaming map requests per node (default 4). */
  maxMapSessionsPerNode?: number;
}

export interface LocalTailnet {
  controlURL: string;
  /** Our relay's URL; undefined with `derp: false`. */
  derpURL: string | undefined;
  derpMap: DERPMap;
  /** The control server, for admin actions (nodes, expiry, policy). */
  server: ControlServer;
  /** Our relay; undefined with `derp: false`. */
  derp: DerpHttpServer | undefined;
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

/** Whether `err`, or an error it wraps, is EADDRINUSE. */
function inUse(err: unknown): boolean {
  for (let e = err; e instanceof Error; e = e.cause) {
    if ((e as NodeJS.ErrnoException).code === 'EADDRINUSE') return true;
  }
  return false;
}

/** A coordinator could not listen where it was asked to; names the address. */
export class ListenError extends Error {
  constructor(
    readonly what: 'control server' | 'DERP relay',
    readonly address: string,
    options: { cause: unknown },
  ) {
    const why = inUse(options.cause) ? 'the port is taken' : (options.cause as Error).message;
    super(`the ${what} cannot listen on ${address}: ${why}`, options);
    this.name = 'ListenError';
  }
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

const hostPort = (host: string, port: number) =>
  host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;

/** Our relay on `host`, with its self-signed certificate kept in `stateDir`, and its DERP map. */
async function startRelay(
  opts: LocalTailnetOptions,
  host: string,
): Promise<{ derp: DerpHttpServer; derpMap: DERPMap }> {
  const tls = await loadOrCreateCertificate(opts.stateDir, host);
  const port = opts.derpPort ?? 0;
  let derp: DerpHttpServer;
  try {
    derp = await DerpHttpServer.listen({
      host,
      port,
      stunPort: opts.stunPort === -1 ? undefined : (opts.stunPort ?? 0),
      tls,
      acceptPlainHttp: true,
      limits: opts.limits,
    });
  } catch (err) {
    throw new ListenError('DERP relay', hostPort(host, port), { cause: err });
  }
  return { derp, derpMap: localDerpMap(derp, opts.derpMapHost ?? host, tls.certName) };
}

/**
 * Starts our control server and, unless `derp: false`, our DERP relay beside it. The one
 * implementation behind library callers, `quackscale control serve` and `quackscale_serve()`;
 * a taken port is a {@link ListenError} naming it.
 */
export async function startLocalTailnet(opts: LocalTailnetOptions): Promise<LocalTailnet> {
  const host = opts.host ?? '127.0.0.1';
  await mkdir(opts.stateDir, { recursive: true, mode: 0o700 });
  const relay = opts.derp === false ? undefined : await startRelay(opts, host);
  const derp = relay?.derp;
  const derpMap = relay?.derpMap ?? opts.derpMap ?? { Regions: {} };
  let control: ControlServer | undefined;
  try {
    const controlStateDir = opts.controlStateDir ?? join(opts.stateDir, 'control');
    // The file store makes it; with another store the admin token still goes there.
    await mkdir(controlStateDir, { recursive: true, mode: 0o700 });
    control = await ControlServer.create({
      stateDir: controlStateDir,
      derpMap,
      baseDomain: opts.baseDomain,
      policy: opts.policy,
      serverURL: opts.serverURL,
      logger: opts.logger,
      store: opts.store,
      authKeys: opts.authKeys,
      limits: opts.limits,
      noiseLimits: opts.noiseLimits,
      maxMapSessionsPerNode: opts.maxMapSessionsPerNode,
    });
    const port = opts.controlPort ?? 0;
    const controlURL = await control.listen(port, host).catch((err: unknown) => {
      throw new ListenError('control server', hostPort(host, port), { cause: err });
    });
    const c = control;
    return {
      controlURL,
      derpURL: derp?.url,
      derpMap,
      server: c,
      derp,
      authKey: (o = {}) => c.createAuthKey({ reusable: o.reusable ?? true, ephemeral: o.ephemeral ?? false }),
      approve: (url, o) => c.approve(url, o),
      reject: (url) => c.reject(url),
      pingNode: (id, o) => c.pingNode(id, o),
      close: async () => {
        await c.close();
        await derp?.close();
      },
    };
  } catch (err) {
    await control?.close();
    await derp?.close();
    throw err;
  }
}
