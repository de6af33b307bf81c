// Our `tailscale status --json` next to a real tailscaled's (userspace networking, on Headscale + derper), each
// node looking at the other: the same fields with the same JSON types, and the same facts from both sides
// (keys, IDs, names, addresses, the direct path, the DERP home). Every node advertises only 127.0.0.1
// endpoints: no traffic leaves loopback.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { Magicsock } from '../../src/tailnet/magicsock.js';
import type { IpnStatus } from '../../src/tailnet/status-json.js';
import type { Tailnet } from '../../src/tailnet/tailnet.js';
import { Derper, Headscale, missingPeers, startOurNode, Tailscaled } from './control-peers.js';
import { Cleanup, waitFor } from './rig/exec.js';
import { skipUnless } from './rig/requirements.js';

type Json = Record<string, unknown>;
/** Each key with its JSON type (null, array, object, or typeof). */
const shape = (o: Json) =>
  Object.fromEntries(
    Object.entries(o).map(([k, v]) => [k, v === null ? 'null' : Array.isArray(v) ? 'array' : typeof v]),
  );

skipUnless(missingPeers(['headscale', 'tailscaled', 'tailscale', 'derper']))(
  'status --json ↔ tailscaled',
  () => {
    const cleanup = new Cleanup();
    let ts: Tailscaled;
    let tn: Tailnet;
    let web = 0;

    afterAll(async () => {
      expect((await cleanup.run()).map((e) => e.message)).toEqual([]);
    });

    beforeAll(async () => {
      const srv = http.createServer((_req, res) => res.end('x'.repeat(100_000)));
      await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
      web = (srv.address() as AddressInfo).port;
      cleanup.add('web', () => new Promise((r) => srv.close(r)));
      cleanup.add('web conns', () => srv.closeAllConnections());
      const derper = await Derper.start(cleanup);
      const hs = await Headscale.start(cleanup, { derpPort: derper.port });
      const key = await hs.createKey(await hs.createUser('alice'), { reusable: true });
      ts = await Tailscaled.start(cleanup, 'stjson', {});
      await ts.up(hs.url, key, 'ts-json');
      tn = await startOurNode(cleanup, { controlURL: hs.url, authKey: key, hostname: 'quack-json' });
      await waitFor(
        'each sees the other with its DERP home',
        async () => {
          const theirs = Object.values((await ts.status()).Peer ?? {}).find(
            (p) => p.HostName === 'quack-json',
          );
          const ours = Object.values(tn.tailscaleStatus().Peer ?? {}).find((p) => p.HostName === 'ts-json');
          return theirs?.Relay && ours?.Relay ? true : undefined;
        },
        30_000,
        200,
      );
      // Traffic both ways, until both sides use the direct path.
      const tsIp = (await ts.status()).Self.TailscaleIPs[0]!;
      await waitFor(
        'direct both ways',
        async () => {
          const res = await tn.fetch(`http://${tsIp}:${web}/`);
          await res.text();
          const theirs = Object.values((await ts.status()).Peer ?? {}).find(
            (p) => p.HostName === 'quack-json',
          );
          const ours = Object.values(tn.tailscaleStatus().Peer ?? {}).find((p) => p.HostName === 'ts-json');
          return theirs?.CurAddr && ours?.CurAddr ? true : undefined;
        },
        30_000,
        500,
      );
    });

    it('the same fields with the same JSON types as tailscaled writes', async () => {
      const theirs = (await ts.status()) as unknown as IpnStatus;
      const ours = JSON.parse(JSON.stringify(tn.tailscaleStatus())) as IpnStatus;
      const theirPeer = Object.values(theirs.Peer!)[0]!;
      const ourPeer = Object.values(ours.Peer!)[0]!;
      expect(shape(ours as unknown as Json)).toEqual(shape(theirs as unknown as Json));
      // The one difference: tailscaled runs a peerapi (taildrop and the like), we do not: null, as Go writes
      // the empty list.
      expect({ ...shape(ours.Self as unknown as Json), PeerAPIURL: 'array' }).toEqual(
        shape(theirs.Self as unknown as Json),
      );
      expect(shape(ourPeer as unknown as Json)).toEqual(shape(theirPeer as unknown as Json));
      // …and in the same order, which encoding/json keeps from the struct.
      expect(Object.keys(ours)).toEqual(Object.keys(theirs));
      expect(Object.keys(ours.Self)).toEqual(Object.keys(theirs.Self));
      expect(Object.keys(ourPeer)).toEqual(Object.keys(theirPeer));
    });

    it('each side says the same of the other as the other says of itself', async () => {
      const theirs = (await ts.status()) as unknown as IpnStatus;
      const ours = tn.tailscaleStatus();
      const usThere = theirs.Peer![ours.Self.PublicKey]!;
      const themHere = ours.Peer![theirs.Self.PublicKey]!;
      const same = [
        'ID',
        'NodeID',
        'PublicKey',
        'HostName',
        'DNSName',
        'TailscaleIPs',
        'UserID',
        'Relay',
      ] as const;
      for (const f of same) {
        expect([f, usThere[f]]).toEqual([f, ours.Self[f]]);
        expect([f, themHere[f]]).toEqual([f, theirs.Self[f]]);
      }
      expect(themHere.CurAddr).toBe(`127.0.0.1:${ts.port}`);
      expect(usThere.CurAddr).toBe(`127.0.0.1:${(tn as unknown as { magicsock: Magicsock }).magicsock.port}`);
      expect([themHere.Online, themHere.Active, themHere.InEngine]).toEqual([true, true, true]);
      expect(themHere.RxBytes).toBeGreaterThan(100_000);
      // Self.Addrs: the endpoints each advertises (tailscaled's from TS_DEBUG_PRETENDPOINT).
      expect(ours.Self.Addrs).toEqual([usThere.CurAddr]);
      expect(theirs.Self.Addrs).toEqual([themHere.CurAddr]);
      expect(ours.CurrentTailnet).toEqual(theirs.CurrentTailnet);
      // Our metrics say the same: the 100 KB responses came in over the direct path.
      const m = tn.metrics().text;
      expect(m).toMatch(/^quackscale_peer_direct\{peer="ts-json"\} 1$/m);
      const direct = /^quackscale_peer_received_bytes_total\{peer="ts-json",path="direct"\} (\d+)$/m.exec(m);
      expect(Number(direct?.[1])).toBeGreaterThan(100_000);
      expect(ours.MagicDNSSuffix).toBe(theirs.MagicDNSSuffix);
    });
  },
);
