// Our control client against a real Headscale v0.29.2 (and a real tailscaled joining the same tailnet).
import { afterAll, beforeAll, expect, it, vi } from 'vitest';
import { controlCommand } from '../../src/cli/control.js';
import { ControlClient, type ControlClientOptions } from '../../src/control/client.js';
import { AuthKeyRejectedError, ServerUnreachableError } from '../../src/control/errors.js';
import type { NetMapChange } from '../../src/control/netmap.js';
import { Derper, Headscale, missingPeers, Tailscaled, tempDir } from './control-peers.js';
import { Cleanup, waitFor } from './rig/exec.js';
import { skipUnless } from './rig/requirements.js';

const bare = (addrs: readonly string[]) => addrs.map((a) => a.split('/')[0]!);

skipUnless(missingPeers(['headscale', 'tailscaled', 'tailscale', 'derper']))(
  'control client ↔ Headscale',
  () => {
    const cleanup = new Cleanup();
    const clients: ControlClient[] = [];
    let hs: Headscale;
    let derper: Derper;
    let user: number;
    let reusable: string;

    async function client(
      opts: Partial<ControlClientOptions> & { hostname: string },
    ): Promise<ControlClient> {
      const c = await ControlClient.open({
        serverURL: hs.url,
        stateDir: opts.stateDir ?? (await tempDir(cleanup, 'qs-hsc-')),
        backoff: { initialMs: 50, maxMs: 500 },
        loginTimeoutMs: 5_000,
        ...opts,
      });
      clients.push(c);
      return c;
    }

    async function up(hostname: string, authKey: string) {
      const c = await client({ hostname, authKey });
      await c.login();
      c.start();
      const nm = await c.waitForNetmap(undefined, 20_000);
      return { c, nm };
    }

    beforeAll(async () => {
      derper = await Derper.start(cleanup);
      hs = await Headscale.start(cleanup, { derpPort: derper.port });
      user = await hs.createUser('alice');
      reusable = await hs.createKey(user, { reusable: true });
    });

    afterAll(async () => {
      for (const c of clients) await c.close();
      await cleanup.run();
    });

    it('registers with a reusable key: `headscale nodes list` shows our hostname and addresses', async () => {
      const { nm } = await up('qs-alpha', reusable);
      expect(nm.self.name).toBe('qs-alpha.tailnet.test.');
      expect(nm.magicDNSSuffix).toBe('tailnet.test');
      // Headscale sends its server_url host as MapResponse.Domain (hscontrol/types/config.go Domain()).
      expect(nm.domain).toBe('127.0.0.1');
      expect(nm.dns?.Domains).toContain('tailnet.test');
      expect(nm.self.addresses.length).toBe(2);
      expect(nm.derpMap?.Regions['900']?.Nodes[0]?.DERPPort).toBe(derper.port);
      const listed = (await hs.nodes()).find((n) => n.name === 'qs-alpha');
      expect(listed).toBeDefined();
      expect(listed!.ip_addresses.sort()).toEqual(bare(nm.self.addresses).sort());
      expect(listed!.online).toBe(true);
    });

    it('`quackscale control login` prints the name and addresses that `headscale nodes list` shows', async () => {
      const dir = await tempDir(cleanup, 'qs-hsc-');
      const lines: string[] = [];
      const spy = vi
        .spyOn(console, 'log')
        .mockImplementation((...a: unknown[]) => void lines.push(a.join(' ')));
      let code: number;
      try {
        code = await controlCommand([
          'login',
          '--server',
          hs.url,
          '--authkey',
          reusable,
          '--state-dir',
          dir,
          '--hostname',
          'qs-cli',
        ]);
      } finally {
        spy.mockRestore();
      }
      expect(code).toBe(0);
      const [name, addrs] = lines.join('\n').split('\t');
      expect(name).toBe('qs-cli.tailnet.test.');
      const listed = (await hs.nodes()).find((n) => n.name === 'qs-cli');
      expect(listed?.ip_addresses.sort()).toEqual(bare(addrs!.split(',')).sort());
    });

    it('a second client sees the first in its netmap, and the first gets it as a streamed delta', async () => {
      const alpha = clients[0]!;
      const seen: NetMapChange[] = [];
      alpha.on('netmap', (_nm, changes) => seen.push(...changes));
      const { nm } = await up('qs-beta', reusable);
      const peer = [...nm.peers.values()].find((p) => p.shortName === 'qs-alpha');
      expect(peer).toBeDefined();
      expect(peer!.addresses).toEqual(alpha.netmap!.self.addresses);
      expect(peer!.nodeKey).toBe(alpha.nodeKey!.toString());
      const got = await alpha.waitForNetmap(
        (m) => [...m.peers.values()].some((p) => p.shortName === 'qs-beta'),
        10_000,
      );
      expect(got.peers.get(nm.self.id)?.nodeKey).toBe(nm.self.nodeKey);
      expect(seen.some((c) => c.kind === 'peer-added' || c.kind === 'peer-changed')).toBe(true);
      expect(seen.some((c) => c.kind === 'full')).toBe(false);
    });

    it('registers with an ephemeral key, and logout deletes the ephemeral node', async () => {
      const eph = await hs.createKey(user, { ephemeral: true });
      const { c, nm } = await up('qs-eph', eph);
      expect(
        (await hs.nodes()).some(
          (n) => n.name === 'qs-eph' && n.ip_addresses.includes(bare(nm.self.addresses)[0]!),
        ),
      ).toBe(true);
      await c.logout();
      expect(c.nodeKey).toBeUndefined();
      await waitFor(
        'ephemeral node gone',
        async () => ((await hs.nodes()).some((n) => n.name === 'qs-eph') ? undefined : true),
        10_000,
        200,
      );
    });

    it('sees a tailscaled join and leave as deltas within seconds', async () => {
      const alpha = clients[0]!;
      const seen: NetMapChange[] = [];
      alpha.on('netmap', (_nm, changes) => seen.push(...changes));
      const ts = await Tailscaled.start(cleanup, 'hs1');
      const t0 = Date.now();
      // An ephemeral key, so that `tailscale logout` deletes the node (hscontrol/auth.go handleLogout).
      await ts.up(hs.url, await hs.createKey(user, { ephemeral: true }), 'ts-one');
      const joined = await alpha.waitForNetmap(
        (m) => [...m.peers.values()].some((p) => p.shortName === 'ts-one' && p.online),
        10_000,
      );
      const joinMs = Date.now() - t0;
      const peer = [...joined.peers.values()].find((p) => p.shortName === 'ts-one')!;
      const status = await ts.status();
      expect(peer.addresses.map((a) => a.split('/')[0]).sort()).toEqual([...status.Self.TailscaleIPs].sort());
      expect(peer.discoKey).toMatch(/^discokey:/);
      expect(joinMs).toBeLessThan(15_000);
      expect(seen.some((c) => c.kind === 'peer-added' && c.id === peer.id)).toBe(true);

      await ts.cli(['logout']);
      const t1 = Date.now();
      await alpha.waitForNetmap((m) => !m.peers.has(peer.id), 10_000);
      expect(Date.now() - t1).toBeLessThan(10_000);
      expect(seen).toContainEqual({ kind: 'peer-removed', id: peer.id, name: peer.name });
      expect(seen.some((c) => c.kind === 'full')).toBe(false);
      await ts.stop();
    });

    it('logs in interactively: surfaces the AuthURL and completes once an admin approves it', async () => {
      const urls: string[] = [];
      const c = await client({ hostname: 'qs-interactive', onAuthURL: (u) => urls.push(u) });
      const done = c.login();
      const url = await waitFor('AuthURL', () => urls[0], 10_000, 50);
      expect(url).toMatch(new RegExp(`^${hs.url}/register/`));
      await hs.cli(['auth', 'register', '--auth-id', url.split('/').pop()!, '--user', 'alice']);
      const result = await done;
      expect(result.login?.LoginName).toBe('alice');
      c.start();
      const nm = await c.waitForNetmap(undefined, 10_000);
      expect(nm.self.name).toBe('qs-interactive.tailnet.test.');
      expect((await hs.nodes()).some((n) => n.name === 'qs-interactive')).toBe(true);
    });

    it('re-registers with a new node key when Headscale expires the node', async () => {
      const alpha = clients[0]!;
      const before = alpha.netmap!.self;
      await hs.cli(['nodes', 'expire', '-i', String(before.id)]);
      const after = await alpha.waitForNetmap(
        (m) => m.self.nodeKey !== before.nodeKey && !m.self.expired,
        20_000,
      );
      expect(after.self.id).toBe(before.id);
      expect(after.self.addresses).toEqual(before.addresses);
      const listed = (await hs.nodes()).find((n) => Number(n.id) === before.id)!;
      expect(listed.node_key).toBe(after.self.nodeKey);
    });

    it('refuses a bad key with AuthKeyRejectedError', async () => {
      const c = await client({ hostname: 'qs-bad', authKey: `hskey-auth-AAAAAAAAAAAA-${'b'.repeat(64)}` });
      const err = await c.login().catch((e: unknown) => e);
      expect(err).toBeInstanceOf(AuthKeyRejectedError);
      expect((err as Error).message).toMatch(/invalid|not found|auth/i);
      expect((err as Error).message).not.toContain('b'.repeat(64));
    });

    it('logout expires the node in Headscale', async () => {
      const beta = clients[1]!;
      const id = beta.netmap!.self.id;
      await beta.logout();
      const node = (await hs.nodes()).find((n) => Number(n.id) === id);
      expect(node).toBeDefined();
      const expiry = node!.expiry as { seconds: number } | undefined;
      expect(expiry?.seconds).toBeLessThanOrEqual(Math.ceil(Date.now() / 1000));
    });

    it('a stopped Headscale gives ServerUnreachableError, and the stream retries with backoff', async () => {
      const alpha = clients[0]!;
      const retried = new Promise<Error>((resolve) => alpha.once('retry', (e) => resolve(e)));
      await hs.stop();
      expect(await retried).toBeInstanceOf(ServerUnreachableError);
      const c = await client({ hostname: 'qs-late', authKey: reusable, loginTimeoutMs: 1_000 });
      const err = await c.login().catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ServerUnreachableError);
      expect((err as Error).message).toContain(hs.url);
    });
  },
);
