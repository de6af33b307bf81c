// Subnet routes both ways in the NAT lab (issue 20, items 1 and 3), proved against tailscaled on Headscale:
// - site A: a real tailscaled subnet router (userspace networking, --advertise-routes 192.168.1.0/24,
//   approved with `headscale nodes approve-routes`) in front of a plain LAN host with an HTTP server, a UDP
//   echo and a Parquet file server;
// - site B: our node with acceptRoutes (the library, in the host's namespace), and a DuckDB process that
//   joins with tailscale_up(accept_routes => true) and reads the Parquet file by IP;
// - site C: our node as subnet router (advertiseRoutes 192.168.3.0/24) in front of another LAN host;
// - site D: a real tailscaled with a TUN device and --accept-routes, whose host's own curl, ping and UDP
//   go through either router (first through tailscaled's: the control case that proves the lab).
// Then the policy narrows each subnet to port 8080: the other ports are blocked by the routers' filters,
// ours and tailscaled's.
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { buildForNode, extensionPath } from '../sql/build.js';
import { checksumSql, type DataFile, makeDataFile } from '../sql/datasets.js';
import { DuckProcess, lit } from '../sql/duck-process.js';
import { tempDir } from './control-peers.js';
import { Cleanup, execIn, waitFor } from './rig/exec.js';
import type { Host, Site } from './rig/natlab.js';
import { BLOB_PORT, type LabTailscaled } from './rig/natlab-nodes.js';
import { curlFrom, FILE_PORT, lanHost, ourLibNode, pingFrom, UDP_ECHO_PORT } from './rig/natlab-routes.js';
import { natlabMissing, TailnetLab } from './rig/natlab-tailnet.js';
import { checkRequirements, skipUnless } from './rig/requirements.js';
import type { TailnetProcess } from './rig/tailnet-process.js';

const MB = 1024 * 1024;
const BLOB_MB = 50;
const SUBNET_A = '192.168.1.0/24';
const SUBNET_C = '192.168.3.0/24';
const ALLOW_ALL = { acls: [{ action: 'accept', src: ['*'], dst: ['*:*'] }] };
/** Every node reaches every node, but each subnet only on the blob server's port. */
const SUBNETS_8080_ONLY = {
  acls: [
    { action: 'accept', src: ['*'], dst: ['lab@:*', `${SUBNET_A}:${BLOB_PORT}`, `${SUBNET_C}:${BLOB_PORT}`] },
  ],
};

/** One UDP round trip from `host`'s own stack to ip:port (a node one-liner): the answer, or '' after 3 s. */
async function udpFrom(host: Host, ip: string, port: number, text: string): Promise<string> {
  const js =
    `const s=require('dgram').createSocket('udp4');const t=setTimeout(()=>{console.log('');process.exit(0)},3000);` +
    `s.on('message',m=>{clearTimeout(t);console.log(m.toString());process.exit(0)});s.send(${JSON.stringify(text)},${port},'${ip}')`;
  const r = await execIn(host.ns, process.execPath, ['-e', js], { timeoutMs: 10_000 });
  return r.stdout.trim();
}

skipUnless([...natlabMissing(), ...checkRequirements(['ping', 'sha256sum'])])(
  'NAT lab: subnet routes, used and served, against tailscaled',
  () => {
    const cleanup = new Cleanup();
    let t: TailnetLab;
    let build = '';
    let parquet: DataFile;
    const sites: Record<'a' | 'b' | 'c' | 'd', Site> = {} as never;
    let lanA: Host;
    let lanC: Host;
    let tsClient: LabTailscaled;
    let ours: TailnetProcess;

    beforeAll(async () => {
      build = buildForNode('natlab-routes');
      t = await TailnetLab.create(cleanup, BLOB_MB, { policy: ALLOW_ALL });
      for (const s of ['a', 'b', 'c', 'd'] as const) sites[s] = await t.lab.addSite(s);
      const dir = await tempDir(cleanup, 'qs-natlab-parquet-');
      await mkdir(join(dir, 'www'));
      parquet = await makeDataFile(join(dir, 'www'), 'parquet', 20);
    });

    afterAll(async () => {
      expect((await cleanup.run()).map((e) => e.message)).toEqual([]);
    });

    const blobURL = (host: Host, mb = BLOB_MB) => `http://${host.v4}:${BLOB_PORT}/blob?mb=${mb}`;

    it('control case: tailscaled (TUN, --accept-routes) reaches a LAN behind a tailscaled subnet router approved in Headscale', async () => {
      await t.tailscaled(sites.a, 'tsrtr', { upArgs: [`--advertise-routes=${SUBNET_A}`] });
      lanA = await lanHost(t, sites.a, 'lana', [parquet.path]);
      await t.control.approveRoutes('tsrtr', [SUBNET_A]);
      tsClient = await t.tailscaled(sites.d, 'tscli', { tun: true, upArgs: ['--accept-routes'] });
      await waitFor(
        'tscli reaches lana',
        async () =>
          typeof (await curlFrom(tsClient.host, blobURL(lanA, 1), 5)) === 'object' ? true : undefined,
        60_000,
        500,
      );
      const got = await curlFrom(tsClient.host, blobURL(lanA));
      expect(got).toEqual({ bytes: BLOB_MB * MB, sha256: t.blob.sha256(BLOB_MB) });
      expect(await pingFrom(tsClient.host, lanA.v4)).toBe(3);
    });

    it('our node with acceptRoutes: status names the route; 50 MB intact through tailscaled’s router; UDP round trips', async () => {
      ({ node: ours } = await ourLibNode(t, sites.b, 'qcli', join(build, 'tailnet/index.js'), {
        acceptRoutes: true,
      }));
      const peer = (await ours.status()).peers.find((p) => p.hostname === 'tsrtr');
      expect(peer?.routes).toEqual([SUBNET_A]);
      const got = await ours.fetch(blobURL(lanA));
      expect([got.status, got.bytes, got.sha256]).toEqual([200, BLOB_MB * MB, t.blob.sha256(BLOB_MB)]);
      console.log(`[natlab-routes] ours via tsrtr: ${BLOB_MB} MB in ${Math.round(got.ms)} ms`);
      const udp = await ours.udp(lanA.v4, UDP_ECHO_PORT, 5);
      for (const a of udp.answers)
        expect(a.got).toEqual({ text: `echo ${a.sent}`, from: `${lanA.v4}:${UDP_ECHO_PORT}` });
      // A closed port on the LAN: tailscaled's dial fails and the client gets its RST.
      expect((await ours.dialError(lanA.v4, 9)).code).toBe('ECONNREFUSED');
    });

    it('bad input: a subnet no peer routes fails at once with EHOSTUNREACH and the reason; so does a route not accepted', async () => {
      const none = await ours.dialError('10.200.7.7', 80);
      expect(none.code).toBe('EHOSTUNREACH');
      expect(none.message).toContain('no tailnet node or route has this address');
      expect(none.ms).toBeLessThan(200);
      const { node: plain } = await ourLibNode(t, sites.b, 'qpln', join(build, 'tailnet/index.js'));
      const refused = await plain.dialError(lanA.v4, BLOB_PORT);
      expect(refused.code).toBe('EHOSTUNREACH');
      expect(refused.message).toContain(
        `${SUBNET_A}, which 'tsrtr' routes, but this node does not accept routes`,
      );
      await plain.exit();
    });

    it('DuckDB reads a Parquet file by IP from the LAN behind tailscaled’s router (tailscale_up(accept_routes => true))', async () => {
      const duckHost = await t.lab.addHost(sites.b, 'qduck');
      const duck = await DuckProcess.start({
        sqlModule: join(build, 'sql/index.js'),
        install: { derpHttp: true },
        netns: duckHost.ns,
      });
      cleanup.add('exit DuckDB', () => duck.exit());
      const up = await duck.row(
        `CALL tailscale_up('qduck', control_url => ${lit(t.control.url)}, authkey => ${lit(t.authKey)}, ` +
          `state_dir => ${lit(await tempDir(cleanup, 'qs-natlab-duck-'))}, accept_routes => true)`,
        'tailscale_up',
      );
      expect(up).toMatchObject({ running: true });
      await duck.query(`LOAD ${lit(extensionPath('httpfs'))}`);
      const url = `http://${lanA.v4}:${FILE_PORT}/data.parquet`;
      expect(await duck.row(checksumSql('parquet', url), 'read_parquet by routed IP')).toEqual(
        parquet.checksum,
      );
    });

    let ourRouter: TailnetProcess;

    it('our node as subnet router: tailscaled (TUN, --accept-routes) downloads 50 MB through it intact; ping and UDP too', async () => {
      ({ node: ourRouter } = await ourLibNode(t, sites.c, 'qrtr', join(build, 'tailnet/index.js'), {
        advertiseRoutes: [SUBNET_C],
      }));
      lanC = await lanHost(t, sites.c, 'lanc', [parquet.path]);
      expect((await ourRouter.status()).self.advertisedRoutes).toEqual([SUBNET_C]);
      await t.control.approveRoutes('qrtr', [SUBNET_C]);
      await waitFor(
        'tscli reaches lanc',
        async () =>
          typeof (await curlFrom(tsClient.host, blobURL(lanC, 1), 5)) === 'object' ? true : undefined,
        60_000,
        500,
      );
      const t0 = performance.now();
      const got = await curlFrom(tsClient.host, blobURL(lanC));
      expect(got).toEqual({ bytes: BLOB_MB * MB, sha256: t.blob.sha256(BLOB_MB) });
      console.log(
        `[natlab-routes] tailscaled via qrtr: ${BLOB_MB} MB in ${Math.round(performance.now() - t0)} ms`,
      );
      // ICMP echo is answered where the router's host can ping: lan-c yes, an absent address no.
      expect(await pingFrom(tsClient.host, lanC.v4)).toBe(3);
      expect(await pingFrom(tsClient.host, '192.168.3.99', 2)).toBe(0);
      expect(await udpFrom(tsClient.host, lanC.v4, UDP_ECHO_PORT, 'through ours')).toBe('echo through ours');
      // Our own node uses our router too.
      const viaOurs = await ours.fetch(blobURL(lanC, 5));
      expect([viaOurs.bytes, viaOurs.sha256]).toEqual([5 * MB, t.blob.sha256(5)]);
    });

    it('the packet filter on routed traffic: a policy that opens only port 8080 of each subnet blocks the rest at both routers', async () => {
      const fileA = `http://${lanA.v4}:${FILE_PORT}/data.parquet`;
      const fileC = `http://${lanC.v4}:${FILE_PORT}/data.parquet`;
      // Open before: the file server answers through both routers.
      expect(typeof (await curlFrom(tsClient.host, fileC, 10))).toBe('object');
      expect((await ours.fetch(fileA)).status).toBe(200);
      const dropsBefore = (await ourRouter.status()).filterDrops['no rule for tcp'] ?? 0;
      await t.control.setPolicy(SUBNETS_8080_ONLY);
      // Our node as client: tailscaled's router drops the SYN and tells us so (TSMP): EHOSTUNREACH.
      await waitFor(
        'the narrowed policy at tsrtr',
        async () => ((await ours.dialError(lanA.v4, FILE_PORT)).code === 'EHOSTUNREACH' ? true : undefined),
        30_000,
        500,
      );
      expect((await ours.fetch(blobURL(lanA, 1))).bytes).toBe(MB);
      // Our node as router: tailscaled's SYNs to port 8000 are dropped by our filter; 8080 still passes.
      await waitFor(
        'the narrowed policy at qrtr',
        async () => (typeof (await curlFrom(tsClient.host, fileC, 3)) === 'string' ? true : undefined),
        30_000,
        500,
      );
      expect((await ourRouter.status()).filterDrops['no rule for tcp'] ?? 0).toBeGreaterThan(dropsBefore);
      expect(await curlFrom(tsClient.host, blobURL(lanC, 1), 10)).toEqual({
        bytes: MB,
        sha256: t.blob.sha256(1),
      });
      await t.control.setPolicy(ALLOW_ALL);
    });
  },
);
