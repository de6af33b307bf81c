// What the route scenarios add to the NAT lab (natlab-tailnet.ts): plain hosts on a site's LAN with
// services a subnet router exposes (the blob server, a UDP echo, a file server with ranges for DuckDB),
// an "internet" host that only an exit node's host can reach, and our node as a library in a host's
// namespace (tailnet-process.ts), for what the CLI's SOCKS5 proxy cannot show: UDP, error reasons, fetch.
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import type { TailnetOptions } from '../../../src/tailnet/tailnet.js';
import { tempDir } from '../control-peers.js';
import { execIn, spawnIn, waitFor } from './exec.js';
import type { Host, Site } from './natlab.js';
import { BLOB_PORT, BLOB_SERVER } from './natlab-nodes.js';
import type { TailnetLab } from './natlab-tailnet.js';
import { createNetns, createVeth, ipIn, rigName } from './netns.js';
import { TailnetProcess } from './tailnet-process.js';

const here = dirname(fileURLToPath(import.meta.url));

/** A file of this folder: beside this module, or (compiled for the bench into dist-bench/) in the source tree. */
export function rigFile(name: string): string {
  const found = [join(here, name), resolve(here, '../../../../test/interop/rig', name)].find(existsSync);
  if (!found) throw new Error(`rig file ${name} not found beside ${here} or in the source tree`);
  return found;
}

/** The UDP echo's port on every LAN host. */
export const UDP_ECHO_PORT = 7007;
/** The file server's port (files for DuckDB) on a LAN host that has files. */
export const FILE_PORT = 8000;
const UDP_ECHO = rigFile('udp-echo.mjs');

/** A plain host on `site`'s LAN (no tailnet node) serving the lab's blob on :8080, a UDP echo and `files`. */
export async function lanHost(t: TailnetLab, site: Site, name: string, files: string[] = []): Promise<Host> {
  const host = await t.lab.addHost(site, name);
  const started: Array<[string, ReturnType<typeof spawnIn>]> = [
    [
      'blob server on',
      // '::' takes IPv4 too (bindv6only is 0): the LAN's IPv6 address, where the site has one, serves as well.
      spawnIn(host.ns, process.execPath, [BLOB_SERVER, String(BLOB_PORT), t.blob.path, '::'], {
        cleanup: t.cleanup,
      }),
    ],
    [
      'udp echo on',
      spawnIn(host.ns, process.execPath, [UDP_ECHO, String(UDP_ECHO_PORT)], { cleanup: t.cleanup }),
    ],
  ];
  if (files.length > 0) {
    const script = await bundledFileServer(t);
    started.push([
      'file server on',
      spawnIn(host.ns, process.execPath, [script, String(FILE_PORT), ...files], { cleanup: t.cleanup }),
    ]);
  }
  for (const [banner, proc] of started) {
    await waitFor(
      `${banner} ${name}`,
      () => {
        if (!proc.isRunning()) throw new Error(`${proc.command} exited: ${proc.output()}`);
        return proc.output().includes(banner) ? true : undefined;
      },
      10_000,
      50,
    );
  }
  return host;
}

let fileServerScript: Promise<string> | undefined;

/** lan-file-server.ts bundled for plain Node, once per run. */
function bundledFileServer(t: TailnetLab): Promise<string> {
  fileServerScript ??= (async () => {
    const dir = await tempDir(t.cleanup, 'qs-natlab-fs-');
    const outfile = join(dir, 'lan-file-server.mjs');
    await build({
      entryPoints: [rigFile('lan-file-server.ts')],
      bundle: true,
      platform: 'node',
      format: 'esm',
      outfile,
      logLevel: 'silent',
    });
    return outfile;
  })();
  return fileServerScript;
}

/**
 * The "internet" beyond an exit node: a namespace with `addr`/24 (a public-looking address) joined by a
 * veth to `via`'s host only, whose route to it goes there. Nothing else in the lab has a route to it.
 */
export async function farHost(t: TailnetLab, via: Host, name: string, addr = '198.51.100.10'): Promise<Host> {
  const ns = await createNetns(rigName(t.lab.tag, `f${name}`), t.cleanup);
  const gw = addr.replace(/\.\d+$/, '.1');
  await createVeth({ ns: via.ns, name: `far${name}` }, { ns, name: 'eth0', cidr: `${addr}/24` }, t.cleanup);
  await ipIn(via.ns, ['addr', 'add', `${gw}/24`, 'dev', `far${name}`]);
  await ipIn(ns, ['route', 'add', 'default', 'via', gw]);
  const host: Host = { name, ns, site: via.site, v4: addr, v6: undefined, moves: 0 };
  const blob = spawnIn(ns, process.execPath, [BLOB_SERVER, String(BLOB_PORT), t.blob.path, '0.0.0.0'], {
    cleanup: t.cleanup,
  });
  await waitFor(
    `blob server on ${name}`,
    () => (blob.output().includes('blob server on') ? true : undefined),
    10_000,
    50,
  );
  return host;
}

/** Our node (the library) on a new host behind `site`, up with `options` (routes, exit node…). */
export async function ourLibNode(
  t: TailnetLab,
  site: Site,
  name: string,
  tailnetModule: string,
  options: Partial<TailnetOptions> = {},
): Promise<{ host: Host; node: TailnetProcess }> {
  const host = await t.lab.addHost(site, name);
  const node = await TailnetProcess.start(t.cleanup, host.ns, tailnetModule);
  await node.up({
    controlURL: t.control.url,
    authKey: t.authKey,
    hostname: name,
    stateDir: await tempDir(t.cleanup, `qs-natlab-${name}-`),
    port: t.port(),
    derpHttp: true,
    ...options,
  });
  return { host, node };
}

/** `count` echo requests from `host` to `ip` (ping -c); how many were answered. */
export async function pingFrom(host: Host, ip: string, count = 3): Promise<number> {
  const r = await execIn(host.ns, 'ping', ['-c', String(count), '-W', '2', '-i', '0.3', ip], {
    check: false,
    timeoutMs: 20_000,
  });
  return Number(/(\d+) received/.exec(r.stdout)?.[1] ?? 0);
}

/** curl on `host` (its own network stack: a TUN node's routes apply) for `url`: bytes and sha256, or the failure. */
export async function curlFrom(
  host: Host,
  url: string,
  maxS = 60,
): Promise<{ bytes: number; sha256: string } | string> {
  // One download into a temporary file, then its size and hash.
  const script = `f=$(mktemp); trap 'rm -f "$f"' EXIT; curl -sS --fail --max-time ${maxS} -o "$f" '${url}' && echo "bytes=$(stat -c %s "$f")" && sha256sum "$f"`;
  const r = await execIn(host.ns, 'bash', ['-c', script], { check: false, timeoutMs: (maxS + 10) * 1000 });
  const sha = /^([0-9a-f]{64})/m.exec(r.stdout)?.[1];
  const bytes = /bytes=(\d+)/.exec(r.stdout)?.[1];
  return r.code === 0 && sha && bytes
    ? { bytes: Number(bytes), sha256: sha }
    : `curl failed (${r.code}): ${r.stderr.trim()}`;
}
