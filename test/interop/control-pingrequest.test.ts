// Control's PingRequest against the real peers both ways. Headscale's /debug/ping (a HEAD PingRequest to the
// node, called back over plain HTTP) answered by tailscaled (the control case) and by our node; our control
// server's PingRequests (over Noise: HEAD, disco, TSMP, ICMP, c2n /echo) answered by a real tailscaled, and the same
// by our node. Everything runs on loopback.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PingResponse } from '../../src/control/tailcfg.js';
import { startLocalTailnet } from '../../src/tailnet/local.js';
import type { Tailnet } from '../../src/tailnet/tailnet.js';
import {
  Derper,
  freePort,
  Headscale,
  missingPeers,
  startOurNode,
  Tailscaled,
  tempDir,
} from './control-peers.js';
import { Cleanup, waitFor } from './rig/exec.js';
import { skipUnless } from './rig/requirements.js';

skipUnless(missingPeers(['headscale', 'tailscaled', 'tailscale', 'derper']))('PingRequest', () => {
  const cleanup = new Cleanup();
  afterAll(async () => {
    expect((await cleanup.run()).map((e) => e.message)).toEqual([]);
  });

  const ourNode = (controlURL: string, authKey: string, hostname: string) =>
    startOurNode(cleanup, { controlURL, authKey, hostname });

  describe('from Headscale (/debug/ping)', () => {
    let hs: Headscale;
    let metrics = 0;
    beforeAll(async () => {
      const derper = await Derper.start(cleanup);
      metrics = await freePort();
      hs = await Headscale.start(cleanup, { derpPort: derper.port, metricsPort: metrics });
    });

    /** Headscale's debug ping of node `id`: the text of its result box. */
    async function debugPing(id: number): Promise<string> {
      const html = await (await fetch(`http://127.0.0.1:${metrics}/debug/ping?node=${id}`)).text();
      return /Node \d+ (responded in [^<]+|did not respond)/.exec(html)?.[0] ?? html.slice(0, 300);
    }

    it('tailscaled answers (the control case), and so does our node', async () => {
      const key = await hs.createKey(await hs.createUser('alice'), { reusable: true });
      const ts = await Tailscaled.start(cleanup, 'hsping', {});
      await ts.up(hs.url, key, 'ts-hsping');
      const tsId = Number((await ts.status()).Self.NodeID);
      expect(await debugPing(tsId)).toMatch(/^Node \d+ responded in /);
      const tn = await ourNode(hs.url, key, 'quack-hsping');
      const ourId = tn.tailscaleStatus().Self.NodeID;
      const r = await debugPing(ourId);
      console.log(`[pingrequest] headscale /debug/ping of our node: ${r}`);
      expect(r).toMatch(new RegExp(`^Node ${ourId} responded in `));
    });
  });

  describe('from our control server', () => {
    let local: Awaited<ReturnType<typeof startLocalTailnet>>;
    let ts: Tailscaled;
    let tn: Tailnet;
    let tsIp = '';
    let ourIp = '';
    let tsId = 0;
    let ourId = 0;
    beforeAll(async () => {
      local = await startLocalTailnet({ stateDir: await tempDir(cleanup, 'qs-local-'), stunPort: -1 });
      cleanup.add('local tailnet', () => local.close());
      const key = await local.authKey();
      // The rig's TS_DEBUG_* set: tailscaled advertises only 127.0.0.1 (the embedded relay answers plain HTTP too).
      ts = await Tailscaled.start(cleanup, 'ourping', {});
      await ts.up(local.controlURL, key, 'ts-ourping');
      tn = await ourNode(local.controlURL, key, 'quack-ourping');
      const st = await ts.status();
      tsIp = st.Self.TailscaleIPs.find((a) => a.includes('.'))!;
      tsId = Number(st.Self.NodeID);
      ourIp = tn.tailscaleStatus().TailscaleIPs!.find((a) => a.includes('.'))!;
      ourId = tn.tailscaleStatus().Self.NodeID;
      await waitFor(
        'each sees the other',
        async () => {
          const theirs = Object.values((await ts.status()).Peer ?? {}).find(
            (p) => p.HostName === 'quack-ourping',
          );
          return theirs?.Relay && tn.status().peers.some((p) => p.hostname === 'ts-ourping')
            ? true
            : undefined;
        },
        30_000,
        200,
      );
    });

    const json = (b: Buffer | undefined) => JSON.parse(b?.toString() ?? 'null') as PingResponse;

    it.each([
      ['tailscaled', () => tsId],
      ['our node', () => ourId],
    ])('%s answers a HEAD ping over Noise', async (_who, id) => {
      expect(await local.pingNode(id(), { timeoutMs: 10_000 })).toMatchObject({ method: 'HEAD' });
    });

    it.each(['disco', 'TSMP', 'ICMP'])(
      '%s: tailscaled and our node ping each other and report the same fields',
      async (types) => {
        const theirs = json((await local.pingNode(tsId, { types, ip: ourIp, timeoutMs: 12_000 }))?.body);
        const ours = json((await local.pingNode(ourId, { types, ip: tsIp, timeoutMs: 12_000 }))?.body);
        console.log(
          `[pingrequest] ${types}: tailscaled ${JSON.stringify(theirs)}; ours ${JSON.stringify(ours)}`,
        );
        expect(theirs).toMatchObject({ Type: types, IP: ourIp, NodeIP: ourIp, NodeName: 'quack-ourping' });
        expect(ours).toMatchObject({ Type: types, IP: tsIp, NodeIP: tsIp, NodeName: 'ts-ourping' });
        // The same fields, but PeerAPIPort: tailscaled runs a peerapi (its TSMP pong names the port), we do not.
        const fields = (r: PingResponse) =>
          Object.keys(r)
            .filter((k) => k !== 'PeerAPIPort')
            .sort();
        expect(fields(ours)).toEqual(fields(theirs));
        if (types === 'TSMP') expect(ours.PeerAPIPort).toBeGreaterThan(0);
        if (types === 'disco') {
          expect(ours.Endpoint).toBe(`127.0.0.1:${ts.port}`);
          expect(theirs.Endpoint).toMatch(/^127\.0\.0\.1:\d+$/);
        }
      },
    );

    it('c2n /echo: tailscaled and our node both echo the body in an HTTP response', async () => {
      const payload = Buffer.from('POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n\r\nquak');
      for (const id of [tsId, ourId]) {
        const ans = await local.pingNode(id, { types: 'c2n', payload, timeoutMs: 10_000 });
        expect([id, ans?.method]).toEqual([id, 'POST']);
        expect(ans!.body.toString()).toMatch(/^HTTP\/1\.1 200 OK\r\n[\s\S]*\r\n\r\nquak$/);
      }
    });
  });
});
