// TSMP between our node and a real tailscaled (userspace networking) on Headscale + derper: `tailscale ping
// --tsmp` answered by our node, our TSMP ping answered by tailscaled, and a Headscale ACL that opens one port
// each way: a dial of ours that tailscaled's filter refuses fails at once with EHOSTUNREACH (tailscaled's
// rejection, parsed and honoured), and a SYN of tailscaled's that our filter refuses is answered with ours.
// Every node advertises only 127.0.0.1 endpoints: no traffic leaves loopback.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { Tailnet } from '../../src/tailnet/tailnet.js';
import type { Tsmp } from '../../src/tailnet/tsmp/tsmp.js';
import { Derper, freePort, Headscale, missingPeers, startOurNode, Tailscaled } from './control-peers.js';
import { Cleanup, exec, waitFor } from './rig/exec.js';
import { skipUnless } from './rig/requirements.js';

/** The node's TSMP (private): its counters. */
const tsmpOf = (tn: Tailnet) => (tn as unknown as { tsmp: Tsmp }).tsmp;

skipUnless(missingPeers(['headscale', 'tailscaled', 'tailscale', 'derper']))('TSMP ↔ tailscaled', () => {
  const cleanup = new Cleanup();
  let ts: Tailscaled;
  let tn: Tailnet;
  let socks = 0;
  let open = 0; // the one port each side's ACL opens to the other
  let closedPort = 0; // a port both sides listen on that neither ACL opens
  let tsIp = '';
  let ourIp = '';

  afterAll(async () => {
    expect((await cleanup.run()).map((e) => e.message)).toEqual([]);
  });

  beforeAll(async () => {
    // tailscaled forwards tailnet TCP to its host's loopback: listen there on both ports.
    const web = http.createServer((_req, res) => res.end('ok'));
    await new Promise<void>((r) => web.listen(0, '127.0.0.1', r));
    open = (web.address() as AddressInfo).port;
    const web2 = http.createServer((_req, res) => res.end('ok'));
    await new Promise<void>((r) => web2.listen(0, '127.0.0.1', r));
    closedPort = (web2.address() as AddressInfo).port;
    for (const w of [web, web2]) {
      cleanup.add('web', () => new Promise((r) => w.close(r)));
      cleanup.add('web conns', () => w.closeAllConnections());
    }
    const derper = await Derper.start(cleanup);
    const hs = await Headscale.start(cleanup, {
      derpPort: derper.port,
      policy: JSON.stringify({
        acls: [
          { action: 'accept', src: ['ts@'], dst: [`qs@:${open}`] },
          { action: 'accept', src: ['qs@'], dst: [`ts@:${open}`] },
        ],
      }),
    });
    socks = await freePort();
    ts = await Tailscaled.start(cleanup, 'tsmp', { socks5Port: socks });
    await ts.up(hs.url, await hs.createKey(await hs.createUser('ts')), 'ts-tsmp');
    const authKey = await hs.createKey(await hs.createUser('qs'));
    tn = await startOurNode(cleanup, { controlURL: hs.url, authKey, hostname: 'quack-tsmp' });
    for (const p of [open, closedPort]) {
      (await tn.listen(p)).on('connection', (s) =>
        http.createServer((_q, r) => r.end('ok')).emit('connection', s),
      );
    }
    ourIp = tn.status().self.addresses.find((a) => a.startsWith('100.'))!;
    tsIp = (await ts.status()).Self.TailscaleIPs.find((a) => a.startsWith('100.'))!;
    await waitFor(
      'each sees the other',
      async () => {
        const theirs = Object.values((await ts.status()).Peer ?? {}).find((p) => p.HostName === 'quack-tsmp');
        return theirs?.Relay && tn.status().peers.some((p) => p.hostname === 'ts-tsmp') ? true : undefined;
      },
      30_000,
      200,
    );
  });

  it('`tailscale ping --tsmp` gets a pong from our node, and ours from tailscaled', async () => {
    const before = tsmpOf(tn).stats.pingsAnswered;
    const out = await ts.cli(['ping', '--tsmp', '--timeout', '10s', ourIp]);
    expect(out.stdout).toMatch(
      new RegExp(`pong from quack-tsmp \\(${ourIp.replaceAll('.', '\\.')}\\) via TSMP in \\d+ms`),
    );
    expect(tsmpOf(tn).stats.pingsAnswered).toBe(before + 1);
    const r = await tn.ping('ts-tsmp', { type: 'tsmp' });
    expect(r).toMatchObject({ node: 'ts-tsmp', ip: tsIp, via: 'TSMP', type: 'tsmp' });
    expect(r.latencyMs).toBeGreaterThan(0);
  });

  it("a dial tailscaled's filter refuses fails at once with EHOSTUNREACH, naming the ACL", async () => {
    (await tn.dial(tsIp, open)).destroy(); // the control: the open port connects
    const before = tsmpOf(tn).stats.rejectsReceived;
    const t0 = Date.now();
    const err = await tn.dial(tsIp, closedPort, { timeout: 20_000 }).then(
      (s) => {
        s.destroy();
        return undefined;
      },
      (e: NodeJS.ErrnoException) => e,
    );
    const ms = Date.now() - t0;
    console.log(`[tsmp] dial refused by tailscaled's ACL failed after ${ms} ms: ${err?.message}`);
    expect(err?.code).toBe('EHOSTUNREACH');
    expect(err?.message).toMatch(/TSMP reject, reason acl/);
    expect(ms).toBeLessThan(3000);
    expect(tsmpOf(tn).stats.rejectsReceived).toBe(before + 1);
  });

  it("a SYN of tailscaled's that our filter refuses is answered with a TSMP rejection", async () => {
    const curl = (p: number) =>
      exec(
        'curl',
        ['-sS', '-x', `socks5h://127.0.0.1:${socks}`, '--connect-timeout', '4', `http://${ourIp}:${p}/`],
        { timeoutMs: 20_000, check: false },
      );
    expect((await curl(open)).stdout).toBe('ok');
    const before = tsmpOf(tn).stats.rejectsSent;
    const denied = await curl(closedPort);
    // tailscaled's own stack ignores the rejection in userspace mode (pendopen.go only tracks what its TUN
    // sends), so curl still times out: 28.
    expect(denied.code).toBe(28);
    expect(tsmpOf(tn).stats.rejectsSent).toBeGreaterThan(before);
    expect(tn.status().filterDrops['no rule for tcp']).toBeGreaterThan(0);
  });
});
