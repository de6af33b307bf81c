// Our tailnet node against a real tailscaled (userspace networking, which forwards inbound tailnet TCP to its
// host's 127.0.0.1) on Headscale + derper and on our embedded default: 50 MB each way, the DERP and direct
// paths (and falling back from one to the other mid-transfer), a Headscale ACL enforced by our packet filter,
// and a tailscaled restart. Every node advertises only 127.0.0.1 endpoints: no traffic leaves loopback.
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startLocalTailnet } from '../../src/tailnet/local.js';
import type { Magicsock } from '../../src/tailnet/magicsock.js';
import { Tailnet, type TailnetOptions } from '../../src/tailnet/tailnet.js';
import { Derper, freePort, Headscale, missingPeers, Tailscaled, tempDir } from './control-peers.js';
import { Cleanup, exec, waitFor } from './rig/exec.js';
import { skipUnless } from './rig/requirements.js';

const MB = 1024 * 1024;
const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');
/** The node's magicsock (private): its UDP port, and its socket for dropping inbound UDP. */
const magicsockOf = (tn: Tailnet) => (tn as unknown as { magicsock: Magicsock }).magicsock;

skipUnless(missingPeers(['headscale', 'tailscaled', 'tailscale', 'derper']))(
  'tailnet node ↔ tailscaled',
  () => {
    const cleanup = new Cleanup();
    let derper: Derper;
    let hs: Headscale;
    let key = '';
    let blob: Buffer; // served to the tailnet by tailscaled's side, uploaded by it too
    let blobFile = '';
    let smallFile = ''; // its first MB
    const small = () => `${MB} ${sha(blob.subarray(0, MB))}`;
    let httpPort = 0; // a loopback HTTP server in this process: what tailscaled forwards tailnet TCP to
    let ts1: Tailscaled;
    let socks1 = 0;
    let quack: Tailnet;

    afterAll(async () => {
      expect((await cleanup.run()).map((e) => e.message)).toEqual([]);
    });

    beforeAll(async () => {
      derper = await Derper.start(cleanup);
      hs = await Headscale.start(cleanup, { derpPort: derper.port });
      key = await hs.createKey(await hs.createUser('alice'), { reusable: true });
      const dir = await tempDir(cleanup, 'qs-blob-');
      blob = randomBytes(50 * MB);
      blobFile = join(dir, 'blob');
      await writeFile(blobFile, blob);
      smallFile = join(dir, 'small');
      await writeFile(smallFile, blob.subarray(0, MB));
      const web = http.createServer((req, res) => {
        const n = Number(new URL(req.url ?? '/', 'http://x').searchParams.get('mb') ?? 50) * MB;
        res.writeHead(200, { 'content-length': String(n) });
        res.end(blob.subarray(0, n));
      });
      await new Promise<void>((r) => web.listen(0, '127.0.0.1', r));
      cleanup.add('web', () => new Promise((r) => web.close(r)));
      cleanup.add('web conns', () => web.closeAllConnections());
      httpPort = (web.address() as AddressInfo).port;
      socks1 = await freePort();
      ts1 = await Tailscaled.start(cleanup, 'one', { socks5Port: socks1, persist: true });
      await ts1.up(hs.url, key, 'ts-one');
      quack = await node(hs.url, key, 'quack');
      await hashServer(quack, 8080);
      await seeEachOther(quack, ts1, 'ts-one', 'quack');
    });

    /** One of our nodes, advertising only its loopback endpoint. */
    async function node(
      controlURL: string,
      authKey: string,
      hostname: string,
      extra: Partial<TailnetOptions> = {},
    ): Promise<Tailnet> {
      const port = await freePort();
      const tn = new Tailnet({
        hostname,
        controlURL,
        authKey,
        stateDir: await tempDir(cleanup, 'qs-tn-'), // removed after the node closes (cleanup runs LIFO)
        derpHttp: true,
        port,
        endpoints: [`127.0.0.1:${port}`],
        ...extra,
      });
      cleanup.add(`close ${hostname}`, () => tn.close());
      await tn.up();
      return tn;
    }

    /** An HTTP server on our node's tailnet `port` answering each request with `<bytes> <sha256>` of its body. */
    async function hashServer(tn: Tailnet, port: number): Promise<void> {
      const web = http.createServer((req, res) => {
        const h = createHash('sha256');
        let n = 0;
        req.on('data', (d: Buffer) => {
          h.update(d);
          n += d.length;
        });
        req.on('end', () => res.end(`${n} ${h.digest('hex')}`));
      });
      (await tn.listen(port)).on('connection', (s) => web.emit('connection', s));
    }

    async function seeEachOther(tn: Tailnet, ts: Tailscaled, tsName: string, ourName: string): Promise<void> {
      await waitFor('our node sees tailscaled', () => (peerOf(tn, tsName) ? true : undefined), 30_000, 100);
      await waitFor(
        'tailscaled sees our node',
        // …with our DERP home (Relay), which is all a DERP-only conversation needs.
        async () => (tsPeer(await ts.status(), ourName)?.Relay ? true : undefined),
        30_000,
        200,
      );
    }

    const peerOf = (tn: Tailnet, hostname: string) => tn.status().peers.find((p) => p.hostname === hostname);
    const tsPeer = (st: Awaited<ReturnType<Tailscaled['status']>>, hostname: string) =>
      Object.values(st.Peer ?? {}).find((p) => p.HostName === hostname);
    const ourIp = (tn: Tailnet) => tn.status().self.addresses.find((a) => a.startsWith('100.'))!;
    const tsIp = async (ts: Tailscaled) =>
      (await ts.status()).Self.TailscaleIPs.find((a) => a.startsWith('100.'))!;

    /** Downloads `mb` MB through tailscaled's forwarding to our loopback web server: [bytes, sha256]. */
    async function download(tn: Tailnet, ip: string, mb: number, onProgress?: (n: number) => void) {
      const res = await tn.fetch(`http://${ip}:${httpPort}/blob?mb=${mb}`);
      expect(res.status).toBe(200);
      const h = createHash('sha256');
      let n = 0;
      for await (const chunk of res.body!) {
        h.update(chunk);
        n += chunk.length;
        onProgress?.(n);
      }
      return [n, h.digest('hex')] as const;
    }

    /** curl through tailscaled's SOCKS5 (hostnames resolved by tailscaled): PUTs the file, returns the body. */
    /**
     * curl through tailscaled's SOCKS5 (hostnames resolved by tailscaled): PUTs the file. `out` is the
     * response body followed by curl's errors, so a failed expectation shows why.
     */
    async function curlPut(socks: number, url: string, file: string, extra: string[] = []) {
      const args = ['-sS', '--fail', '-x', `socks5h://127.0.0.1:${socks}`, '--max-time', '90', ...extra];
      const r = await exec('curl', [...args, '-T', file, url], { timeoutMs: 100_000, check: false });
      return { code: r.code, out: r.stdout + r.stderr };
    }

    it('50 MB down from an HTTP server behind tailscaled, 50 MB up from its SOCKS5 to our listen()', async () => {
      const ip = await tsIp(ts1);
      const [n, digest] = await download(quack, ip, 50);
      expect(n).toBe(blob.length);
      expect(digest).toBe(sha(blob));
      const up = await curlPut(socks1, `http://${ourIp(quack)}:8080/up`, blobFile);
      expect(up.out).toBe(`${blob.length} ${sha(blob)}`);
      // tailscaled resolves our MagicDNS name too.
      const byName = await curlPut(socks1, 'http://quack.tailnet.test:8080/name', smallFile);
      expect(byName.out).toBe(small());
    });

    it('direct path: our status, `tailscale ping` and `tailscale status --json` all show it', async () => {
      const ourPort = magicsockOf(quack).port;
      await waitFor(
        'our direct path',
        () => (peerOf(quack, 'ts-one')?.path.startsWith('direct') ? true : undefined),
        20_000,
        100,
      );
      expect(peerOf(quack, 'ts-one')!.path).toBe(`direct 127.0.0.1:${ts1.port}`);
      expect((await quack.ping('ts-one')).via).toBe(`127.0.0.1:${ts1.port}`);
      const pong = await ts1.cli(['ping', '-c', '5', '--until-direct', 'quack']);
      expect(pong.stdout).toContain(`via 127.0.0.1:${ourPort}`);
      const peer = tsPeer(await ts1.status(), 'quack')!;
      expect(peer.CurAddr).toBe(`127.0.0.1:${ourPort}`);
    });

    it('DERP only: a tailscaled with TS_DEBUG_ALWAYS_USE_DERP=1, and our derpOnly node', async () => {
      const socks = await freePort();
      const ts2 = await Tailscaled.start(cleanup, 'derp', {
        socks5Port: socks,
        env: { TS_DEBUG_ALWAYS_USE_DERP: '1' },
      });
      await ts2.up(hs.url, key, 'ts-derp');
      await seeEachOther(quack, ts2, 'ts-derp', 'quack');
      const [n, digest] = await download(quack, await tsIp(ts2), 20);
      expect([n, digest]).toEqual([20 * MB, sha(blob.subarray(0, 20 * MB))]);
      expect(peerOf(quack, 'ts-derp')!.path).toBe('derp local');
      expect((await quack.ping('ts-derp')).via).toBe('DERP(local)');
      const peer = tsPeer(await ts2.status(), 'quack')!;
      expect(peer.CurAddr).toBe('');
      expect(peer.Relay).toBe('local');
      // Our node refusing direct UDP, to tailscaled which would take it.
      const relayed = await node(hs.url, key, 'quack-derp', { derpOnly: true });
      await hashServer(relayed, 8080);
      await seeEachOther(relayed, ts1, 'ts-one', 'quack-derp');
      const up = await curlPut(socks1, `http://${ourIp(relayed)}:8080/up`, smallFile);
      expect(up.out).toBe(small());
      expect(peerOf(relayed, 'ts-one')!.path).toBe('derp local');
      expect(tsPeer(await ts1.status(), 'quack-derp')!.CurAddr).toBe('');
      await relayed.close();
      await ts2.stop();
    });

    it('the direct path dropped mid-transfer: the download completes over DERP', async () => {
      const tn = await node(hs.url, key, 'quack-drop');
      await seeEachOther(tn, ts1, 'ts-one', 'quack-drop');
      const ip = await tsIp(ts1);
      await tn.ping('ts-one');
      await waitFor(
        'direct',
        () => (peerOf(tn, 'ts-one')?.path.startsWith('direct') ? true : undefined),
        20_000,
        100,
      );
      // From 4 MB on, every UDP datagram to this node is dropped (WireGuard and disco): only DERP is left.
      const ms = magicsockOf(tn);
      let dropped = false;
      let derpInAtDrop = 0;
      const [n, digest] = await download(tn, ip, 30, (got) => {
        if (got < 4 * MB || dropped) return;
        dropped = true;
        derpInAtDrop = ms.stats.derpIn;
        ms.udp.onDatagram(() => {});
      });
      expect(dropped).toBe(true);
      // The rest (over 20 MB, so well over 10,000 packets) came in over DERP.
      expect(ms.stats.derpIn - derpInAtDrop).toBeGreaterThan(10_000);
      expect([n, digest]).toEqual([30 * MB, sha(blob.subarray(0, 30 * MB))]);
      // Our sends still leave over UDP, so our side gives up the direct path only once it has
      // heard no pong for endpoint.go's trust window (6.5 s), which may outlast the transfer.
      await waitFor(
        'derp path',
        () => (peerOf(tn, 'ts-one')?.path === 'derp local' ? true : undefined),
        15_000,
        100,
      );
      await tn.close();
    });

    it('packet filter: a Headscale ACL allowing one port; another gets no answer and the drop is counted', async () => {
      const hsP = await Headscale.start(cleanup, {
        derpPort: derper.port,
        policy:
          '{ // only port 8001 on anyone\n "acls": [{ "action": "accept", "src": ["bob@"], "dst": ["bob@:8001"] }],\n}\n',
      });
      const k = await hsP.createKey(await hsP.createUser('bob'), { reusable: true });
      const socks = await freePort();
      const ts = await Tailscaled.start(cleanup, 'acl', { socks5Port: socks });
      await ts.up(hsP.url, k, 'ts-acl');
      const tn = await node(hsP.url, k, 'quack-acl');
      await hashServer(tn, 8001);
      await hashServer(tn, 8002); // listening: without the filter it would answer
      await seeEachOther(tn, ts, 'ts-acl', 'quack-acl');
      const url = (port: number) => `http://${ourIp(tn)}:${port}/`;
      const ok = await curlPut(socks, url(8001), smallFile);
      expect(ok.out).toBe(small());
      const before = tn.status().filterDrops['no rule for tcp'] ?? 0;
      const t0 = Date.now();
      const denied = await curlPut(socks, url(8002), smallFile, ['--connect-timeout', '4']);
      // 28 = curl's timeout: no reset came back (that would be 7 or 97 "refused"); our TSMP rejection
      // does, but tailscaled's userspace stack does not act on it (wgengine/pendopen.go only logs).
      expect(denied.code).toBe(28);
      expect(Date.now() - t0).toBeGreaterThanOrEqual(3500);
      expect(tn.status().filterDrops['no rule for tcp'] ?? 0).toBeGreaterThan(before);
      await tn.close();
      await ts.stop();
      await hsP.stop();
    });

    it('tailscaled restarted: our node reconnects and a new download works', async () => {
      const ip = await tsIp(ts1);
      await download(quack, ip, 1); // a live WireGuard session that the restart kills on tailscaled's side
      await ts1.stop();
      await ts1.run(); // same state file: same node, keys and address, new disco key
      await waitFor(
        'tailscaled Running',
        async () => ((await ts1.status()).BackendState === 'Running' ? true : undefined),
        30_000,
        200,
      );
      expect(await tsIp(ts1)).toBe(ip);
      // A new dial through tailscaled to our web server: once the new disco key reaches us, our WireGuard
      // session is started afresh, so this takes a second or two, not WireGuard's 15 s rekey timeout.
      const t0 = Date.now();
      const sock = await waitFor(
        'a dial after the restart',
        async () => quack.dial(ip, httpPort, { timeout: 3000 }).catch(() => undefined),
        60_000,
        200,
      );
      const reconnectMs = Date.now() - t0;
      sock.destroy();
      console.log(`[restart] reconnected ${reconnectMs} ms after tailscaled was Running`);
      expect(reconnectMs).toBeLessThan(10_000);
      const [n, digest] = await download(quack, ip, 5);
      expect([n, digest]).toEqual([5 * MB, sha(blob.subarray(0, 5 * MB))]);
      const up = await curlPut(socks1, `http://${ourIp(quack)}:8080/after`, smallFile);
      expect(up.out).toBe(small());
    });

    it('a real tailscaled joins the embedded default with no TS_DEBUG_* variable and reaches our node over DERP', async () => {
      // The relay speaks TLS with a certificate pinned in the DERP map: neither side needs a flag.
      const local = await startLocalTailnet({ stateDir: await tempDir(cleanup, 'qs-local-'), stunPort: -1 });
      cleanup.add('local tailnet', () => local.close());
      expect(local.derpURL).toMatch(/^https:/);
      const k = await local.authKey();
      const socks = await freePort();
      const ts = await Tailscaled.start(cleanup, 'local', { socks5Port: socks, debugEnv: false });
      const environ = readFileSync(`/proc/${ts.proc!.pid}/environ`, 'utf8').split('\0');
      expect(environ.filter((v) => v.startsWith('TS_DEBUG_'))).toEqual([]);
      await ts.up(local.controlURL, k, 'ts-local');
      // DERP only on our side: tailscaled has no direct path to take, so every byte crosses the relay.
      const tn = await node(local.controlURL, k, 'quack-local', {
        derpHttp: false,
        derpOnly: true,
        endpoints: [],
      });
      await hashServer(tn, 8080);
      await seeEachOther(tn, ts, 'ts-local', 'quack-local');
      const up = await curlPut(socks, `http://${ourIp(tn)}:8080/up`, blobFile);
      expect(up.out).toBe(`${blob.length} ${sha(blob)}`);
      const [n, digest] = await download(tn, await tsIp(ts), 10);
      expect([n, digest]).toEqual([10 * MB, sha(blob.subarray(0, 10 * MB))]);
      expect(peerOf(tn, 'ts-local')?.path).toBe('derp local');
      const seen = tsPeer(await ts.status(), 'quack-local')!;
      expect([seen.Relay, seen.CurAddr ?? '']).toEqual(['local', '']);
      await tn.close();
      await ts.stop();
    });
  },
);
