// Exit nodes both ways in the NAT lab (issue 20, items 2 and 4), against tailscaled on Headscale. The
// "internet" is the lab's inet namespace: a server there answers each request with the address it came
// from, so a client can tell whether its traffic left through its own site's NAT or through the exit
// node's (every site has its own public address, 203.0.113.<10 + index>).
// - site a: a real tailscaled exit node (userspace networking, --advertise-exit-node, approved in
//   Headscale); site b: our node with exitNode => it, which fetches through it;
// - site c: our node with advertiseExitNode; site d: a real tailscaled (userspace) with --exit-node =>
//   ours, whose SOCKS5 proxy then reaches the internet through site c.
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { buildForNode } from '../sql/build.js';
import { Cleanup, execIn, spawnIn, waitFor } from './rig/exec.js';
import { SERVER_V4, type Site } from './rig/natlab.js';
import {
  BLOB_SERVER,
  type LabTailscaled,
  BLOB_PORT as NAT_BLOB_PORT,
  SOCKS_PORT,
} from './rig/natlab-nodes.js';
import { lanHost, ourLibNode } from './rig/natlab-routes.js';
import { natlabMissing, TailnetLab } from './rig/natlab-tailnet.js';
import { skipUnless } from './rig/requirements.js';
import { ChildError, type TailnetProcess } from './rig/tailnet-process.js';

const MB = 1024 * 1024;
const BLOB_MB = 20;
const WHOAMI_PORT = 18081;
const BLOB_PORT = 18080;
const EXIT_ROUTES = ['0.0.0.0/0', '::/0'];
const WHOAMI = `http://${SERVER_V4}:${WHOAMI_PORT}/`;
const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');

/** An HTTP server on the "internet" that answers with the caller's address (as a NAT left it). */
const WHOAMI_JS =
  `require('http').createServer((q,s)=>s.end(q.socket.remoteAddress.replace(/^::ffff:/,'')))` +
  `.listen(${WHOAMI_PORT},'${SERVER_V4}',()=>console.log('whoami on'))`;

skipUnless(natlabMissing())('NAT lab: exit nodes, used and served, against tailscaled', () => {
  const cleanup = new Cleanup();
  let t: TailnetLab;
  let build = '';
  const sites: Record<'a' | 'b' | 'c' | 'd', Site> = {} as never;
  let ours: TailnetProcess;
  let tsexit: LabTailscaled;

  beforeAll(async () => {
    build = buildForNode('natlab-exit');
    t = await TailnetLab.create(cleanup, BLOB_MB, {
      policy: { acls: [{ action: 'accept', src: ['*'], dst: ['*:*'] }] },
    });
    for (const s of ['a', 'b', 'c', 'd'] as const) sites[s] = await t.lab.addSite(s);
    const servers = [
      spawnIn(t.lab.inet, process.execPath, ['-e', WHOAMI_JS], { cleanup }),
      spawnIn(t.lab.inet, process.execPath, [BLOB_SERVER, String(BLOB_PORT), t.blob.path, SERVER_V4], {
        cleanup,
      }),
    ];
    for (const [i, proc] of servers.entries()) {
      await waitFor(
        `internet server ${i}`,
        () => {
          if (!proc.isRunning()) throw new Error(`${proc.command} exited: ${proc.output()}`);
          return /whoami on|blob server on/.test(proc.output()) ? true : undefined;
        },
        10_000,
        50,
      );
    }
  });

  afterAll(async () => {
    expect((await cleanup.run()).map((e) => e.message)).toEqual([]);
  });

  it('our node through a tailscaled exit node: the internet sees the exit node’s address; 20 MB intact', async () => {
    tsexit = await t.tailscaled(sites.a, 'tsexit', { upArgs: ['--advertise-exit-node'] });
    await t.control.approveRoutes('tsexit', EXIT_ROUTES);
    // Without an exit node the same server sees our own site's address.
    const { node: plain } = await ourLibNode(t, sites.b, 'qplain', join(build, 'tailnet/index.js'));
    const direct = await plain.fetch(WHOAMI, { direct: true });
    expect(direct.sha256).toBe(sha256(sites.b.wan4));
    await plain.exit();
    ({ node: ours } = await ourLibNode(t, sites.b, 'qexc', join(build, 'tailnet/index.js'), {
      exitNode: 'tsexit',
    }));
    const st = (await ours.status()).peers.find((p) => p.hostname === 'tsexit');
    expect([st?.exitNodeOption, st?.exitNode]).toEqual([true, true]);
    // tn.fetch and a direct net alike: nothing non-tailnet leaves around the exit node.
    expect((await ours.fetch(WHOAMI)).sha256).toBe(sha256(sites.a.wan4));
    expect((await ours.fetch(WHOAMI, { direct: true })).sha256).toBe(sha256(sites.a.wan4));
    const got = await ours.fetch(`http://${SERVER_V4}:${BLOB_PORT}/blob?mb=${BLOB_MB}`);
    expect([got.status, got.bytes, got.sha256]).toEqual([200, BLOB_MB * MB, t.blob.sha256(BLOB_MB)]);
    console.log(`[natlab-exit] ours via tsexit: ${BLOB_MB} MB in ${Math.round(got.ms)} ms`);
  });

  it('exitNodeAllowLANAccess: a direct net reaches the host’s own LAN on the OS; without it, nothing leaves around the exit node', async () => {
    const lanB = await lanHost(t, sites.b, 'lanb');
    const lanURL = `http://${lanB.v4}:${NAT_BLOB_PORT}/blob?mb=1`;
    // qexc (no LAN access): its own LAN is not special, so the dial goes to the exit node, which cannot reach it.
    expect((await ours.dialError(lanB.v4, NAT_BLOB_PORT, { direct: true, timeoutMs: 3_000 })).code).not.toBe(
      'connected',
    );
    const { node: lan } = await ourLibNode(t, sites.b, 'qlan', join(build, 'tailnet/index.js'), {
      exitNode: 'tsexit',
      exitNodeAllowLANAccess: true,
    });
    const got = await lan.fetch(lanURL, { direct: true });
    expect([got.status, got.bytes, got.sha256]).toEqual([200, MB, t.blob.sha256(1)]);
    // Everything else still leaves through the exit node, and a tailnet (not direct) net ignores the setting.
    expect((await lan.fetch(WHOAMI, { direct: true })).sha256).toBe(sha256(sites.a.wan4));
    expect((await lan.dialError(lanB.v4, NAT_BLOB_PORT, { timeoutMs: 3_000 })).code).not.toBe('connected');
    await lan.exit();
  });

  // Last of the tests that use tsexit: once it has gone down and up, Headscale keeps it marked offline.
  it('the exit node goes offline: dials fail at once, naming it; when it returns, traffic flows again', async () => {
    await tsexit.cli(['down']);
    const t0 = performance.now();
    const down = await waitFor(
      'our node hears that tsexit is offline',
      async () => {
        const e = await ours.dialError(SERVER_V4, WHOAMI_PORT, { timeoutMs: 2_000 });
        console.log(
          `[natlab-exit] +${Math.round(performance.now() - t0)} ms: ${e.code} ${e.message} (${Math.round(e.ms)} ms)`,
        );
        return e.code === 'EHOSTUNREACH' ? e : undefined;
      },
      90_000,
      500,
    );
    expect(down.message).toMatch(/exit node 'tsexit' is offline/);
    // At once, not after a TCP connect timeout: the reason is known before a SYN is sent.
    expect(down.ms).toBeLessThan(5_000);
    // Not around it either: the direct net is held back too.
    expect((await ours.dialError(SERVER_V4, WHOAMI_PORT, { direct: true })).code).toBe('EHOSTUNREACH');
    await tsexit.cli([
      'up',
      `--login-server=${t.control.url}`,
      `--auth-key=${t.authKey}`,
      '--hostname=tsexit',
      '--accept-dns=false',
      '--advertise-exit-node',
      '--timeout=60s',
    ]);
    await waitFor(
      'the internet sees site a again',
      async () => {
        const got = await ours.fetch(WHOAMI, { timeoutMs: 3_000 }).catch((e: Error) => e);
        return !(got instanceof Error) && got.sha256 === sha256(sites.a.wan4) ? true : undefined;
      },
      60_000,
      500,
    );
  }, 240_000);

  it('bad input: an exit node that is not in the netmap, or offers no exit routes, fails up() with the reason', async () => {
    const tries: Array<[string, RegExp]> = [
      ['nosuch', /exit node 'nosuch' is not a node of this tailnet's netmap/],
      ['qexc', /node 'qexc' does not offer itself as an exit node/],
    ];
    for (const [exitNode, why] of tries) {
      const err = await ourLibNode(t, sites.b, `qbad${exitNode.length}`, join(build, 'tailnet/index.js'), {
        exitNode,
      }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ChildError);
      expect((err as ChildError).message).toMatch(why);
    }
  });

  it('our node as exit node: a tailscaled with --exit-node reaches the internet through it; 20 MB intact', async () => {
    const { node: exit } = await ourLibNode(t, sites.c, 'qexit', join(build, 'tailnet/index.js'), {
      advertiseExitNode: true,
    });
    expect((await exit.status()).self.advertisedRoutes).toEqual(EXIT_ROUTES);
    await t.control.approveRoutes('qexit', EXIT_ROUTES);
    const client: LabTailscaled = await t.tailscaled(sites.d, 'tsxcli');
    const curl = (url: string, out = '-') =>
      execIn(
        client.host.ns,
        'curl',
        ['-sS', '--fail', '--max-time', '60', '-x', `socks5h://127.0.0.1:${SOCKS_PORT}`, '-o', out, url],
        { check: false, timeoutMs: 70_000 },
      );
    // tailscale set --exit-node fails until the netmap shows the approved routes: wait for it.
    await waitFor(
      'tsxcli takes qexit as exit node',
      async () => ((await client.cli(['set', '--exit-node=qexit'], false)).code === 0 ? true : undefined),
      30_000,
      500,
    );
    await waitFor(
      'the internet sees site c',
      async () => ((await curl(WHOAMI)).stdout.trim() === sites.c.wan4 ? true : undefined),
      30_000,
      500,
    );
    const file = join(client.dir, 'blob');
    const t0 = performance.now();
    const r = await curl(`http://${SERVER_V4}:${BLOB_PORT}/blob?mb=${BLOB_MB}`, file);
    expect(r.code, r.stderr).toBe(0);
    const sum = await execIn(client.host.ns, 'sha256sum', [file]);
    expect(sum.stdout.slice(0, 64)).toBe(t.blob.sha256(BLOB_MB));
    console.log(
      `[natlab-exit] tailscaled via qexit: ${BLOB_MB} MB in ${Math.round(performance.now() - t0)} ms`,
    );
  });
});
