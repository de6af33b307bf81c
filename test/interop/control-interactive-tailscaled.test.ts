// A real tailscaled (v1.102.3) logging in interactively (`tailscale up` with no auth key) to our embedded
// control server and DERP relay (startLocalTailnet): it prints our AuthURL, waits, and joins once
// `quackscale control approve` approves it through the server's admin API; then our own node, also let in
// interactively, reaches it over the tailnet. Every endpoint is on 127.0.0.1.
import { createHash, randomBytes } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it, vi } from 'vitest';
import { controlCommand } from '../../src/cli/control.js';
import { type LocalTailnet, startLocalTailnet } from '../../src/tailnet/local.js';
import { Tailnet } from '../../src/tailnet/tailnet.js';
import { freePort, missingPeers, TAILSCALE, Tailscaled, tempDir } from './control-peers.js';
import { Cleanup, type Spawned, spawnIn, waitFor } from './rig/exec.js';
import { skipUnless } from './rig/requirements.js';

const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

skipUnless(missingPeers(['tailscaled', 'tailscale']))(
  'tailscaled interactive login on our control server',
  () => {
    const cleanup = new Cleanup();
    let local: LocalTailnet;
    let stateDir: string;
    let ts: Tailscaled;
    let up: Spawned;
    let authURL = '';
    let approvedIPs: string[] = [];

    beforeAll(async () => {
      stateDir = await tempDir(cleanup, 'qs-local-');
      local = await startLocalTailnet({ stateDir, stunPort: -1 });
      cleanup.add('local tailnet', () => local.close());
      ts = await Tailscaled.start(cleanup, 'interactive');
    });

    afterAll(async () => {
      vi.restoreAllMocks();
      expect((await cleanup.run()).map((e) => e.message)).toEqual([]);
    });

    it('`tailscale up` without an auth key prints our AuthURL and waits; opening the URL logs nothing in', async () => {
      up = spawnIn(
        null,
        TAILSCALE,
        [
          `--socket=${ts.socket}`,
          'up',
          `--login-server=${local.controlURL}`,
          '--hostname=ts-inter',
          '--accept-dns=false',
          '--timeout=120s',
        ],
        { cleanup },
      );
      authURL = await waitFor(
        'the AuthURL from `tailscale up`',
        () => {
          if (!up.isRunning()) throw new Error(`tailscale up exited:\n${up.output()}`);
          return /To authenticate, visit:\s+(\S+)/.exec(up.output())?.[1];
        },
        30_000,
        100,
      );
      expect(authURL).toMatch(new RegExp(`^${local.controlURL}/register/[A-Za-z0-9_-]{32}$`));
      const st = await ts.status();
      expect(st.BackendState).toBe('NeedsLogin');
      expect(st.AuthURL).toBe(authURL);

      const page = await fetch(authURL);
      expect(page.status).toBe(200);
      expect(await page.text()).toContain('ts-inter');
      expect((await fetch(`${authURL}/approve`)).status).toBe(405);
      expect((await ts.status()).BackendState).toBe('NeedsLogin');
      expect(up.isRunning()).toBe(true);
    });

    it('`quackscale control approve` lets it in: Running, with the addresses and user our server gave it', async () => {
      const out: string[] = [];
      const err: string[] = [];
      vi.spyOn(console, 'log').mockImplementation((...a: unknown[]) => void out.push(a.join(' ')));
      vi.spyOn(console, 'error').mockImplementation((...a: unknown[]) => void err.push(a.join(' ')));
      const code = await controlCommand([
        'approve',
        '--state-dir',
        join(stateDir, 'control'),
        '--user',
        'erin',
        authURL,
      ]);
      vi.restoreAllMocks();
      expect([code, err.join('\n')]).toEqual([0, '']);
      // tailscaled with --state=mem: asks to be ephemeral (RegisterRequest.Ephemeral), as with an auth key.
      const m = /^approved ts-inter\t(\S+)\tuser=erin ephemeral$/.exec(out.join('\n'));
      expect(m, out.join('\n')).not.toBeNull();
      approvedIPs = m![1]!.split(',');

      const exit = await up.exited;
      expect(exit.code, up.output()).toBe(0);
      const st = await ts.status();
      expect(st.BackendState).toBe('Running');
      expect([...st.Self.TailscaleIPs].sort()).toEqual([...approvedIPs].sort());
      expect(st.Self.DNSName).toBe('ts-inter.tailnet.internal.');
      const users = st.User as Record<string, { LoginName: string }> | undefined;
      expect(users?.[String(st.Self.UserID)]?.LoginName).toBe('erin');
    });

    it('our node, let in the same way, reaches tailscaled over the tailnet (bytes checked)', async () => {
      const blob = randomBytes(512 * 1024);
      // tailscaled (userspace networking) hands tailnet TCP for its own address to this loopback server.
      const web = http.createServer((_req, res) => res.end(blob));
      await new Promise<void>((r) => web.listen(0, '127.0.0.1', r));
      cleanup.add('web', () => new Promise((r) => web.close(r)));
      cleanup.add('web conns', () => web.closeAllConnections());
      const webPort = (web.address() as AddressInfo).port;

      const port = await freePort();
      const urls: string[] = [];
      const tn = new Tailnet({
        hostname: 'quack-inter',
        controlURL: local.controlURL,
        stateDir: await tempDir(cleanup, 'qs-tn-'),
        derpHttp: true,
        port,
        endpoints: [`127.0.0.1:${port}`],
        onAuthURL: (url) => {
          urls.push(url);
          local.approve(url).catch((e: unknown) => urls.push(`approve failed: ${String(e)}`));
        },
      });
      cleanup.add('close quack-inter', () => tn.close());
      await tn.login();
      expect(urls).toHaveLength(1);
      const tsIP = approvedIPs.find((a) => a.startsWith('100.'))!;
      await waitFor(
        'tailscaled in our netmap',
        () => (tn.status().peers.some((p) => p.hostname === 'ts-inter') ? true : undefined),
        30_000,
        100,
      );
      const res = await tn.fetch(`http://${tsIP}:${webPort}/`);
      expect(res.status).toBe(200);
      const body = new Uint8Array(await res.arrayBuffer());
      expect([body.length, sha(body)]).toEqual([blob.length, sha(blob)]);
    });
  },
);
