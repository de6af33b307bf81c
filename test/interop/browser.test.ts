// The browser entry in a real browser: Debian's chromium, driven by playwright-core, loads a page that imports
// the bundle (scripts/build-browser.mjs), joins a tailnet with an auth key over WebSockets only, and fetches a
// file from a real tailscaled by its MagicDNS name; the page hashes it with Web Crypto and the test compares.
// Once with Headscale + derper (the page is given the server key: Headscale sends no CORS on /key), once with
// our embedded control server and DERP relay (the page fetches /key itself, across origins).
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { fetchServerKeyWeb } from '../../src/control/ws-dial.js';
import { startLocalTailnet } from '../../src/tailnet/local.js';
import { Derper, Headscale, missingPeers, Tailscaled, tempDir } from './control-peers.js';
import { Cleanup, waitFor } from './rig/exec.js';
import { skipUnless } from './rig/requirements.js';

const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';
const ROOT = join(import.meta.dirname, '../..');
const BUNDLE_DIR = join(ROOT, 'dist/browser');
const MB = 1024 * 1024;
const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

const missing = [
  ...missingPeers(['headscale', 'tailscaled', 'tailscale', 'derper']),
  ...(existsSync(CHROMIUM) ? [] : [`${CHROMIUM} (apt-get install chromium)`]),
];

/** The test page: it loads the bundle and hands its Tailnet class to the test. */
const PAGE = `<!doctype html><title>qs</title><script type="module">
import { Tailnet } from '/quackscale.js';
window.Tailnet = Tailnet;
window.dispatchEvent(new Event('quackscale'));
</script>`;

/** The page's side of a node, as the test drives it. */
interface PageNode {
  up(): Promise<{ self: { addresses: string[] } }>;
  fetch(url: string): Promise<Response>;
  status(): { peers: { hostname: string; path: string }[] };
  close(): Promise<void>;
}
type PageWindow = { Tailnet?: new (opts: Record<string, unknown>) => PageNode };

/** What the page reports back. */
interface PageResult {
  error?: string;
  address?: string;
  status?: number;
  bytes?: number;
  sha256?: string;
  path?: string;
  again?: string;
}

skipUnless(missing)('the browser entry in chromium', () => {
  const cleanup = new Cleanup();
  const blob = randomBytes(5 * MB);
  let httpPort = 0; // what tailscaled forwards tailnet TCP to: a loopback server in this process
  let pageURL = '';
  let context: import('playwright-core').BrowserContext;

  afterAll(async () => {
    expect((await cleanup.run()).map((e) => e.message)).toEqual([]);
  });

  beforeAll(async () => {
    // Always a fresh bundle of the sources under test (esbuild: about a second).
    execFileSync(process.execPath, [join(ROOT, 'scripts/build-browser.mjs'), '--check'], { stdio: 'pipe' });
    const files = http.createServer((_req, res) =>
      res.writeHead(200, { 'content-length': blob.length }).end(blob),
    );
    await new Promise<void>((r) => files.listen(0, '127.0.0.1', r));
    cleanup.add('files', () => new Promise((r) => files.close(r)));
    cleanup.add('files conns', () => files.closeAllConnections());
    httpPort = (files.address() as AddressInfo).port;
    // The page's own origin: a blank page and the bundle.
    const pages = http.createServer((req, res) => {
      const name = new URL(req.url ?? '/', 'http://x').pathname.slice(1);
      if (name === '') return res.writeHead(200, { 'content-type': 'text/html' }).end(PAGE);
      if (!/^quackscale\.js(\.map)?$/.test(name)) return res.writeHead(404).end();
      res.writeHead(200, { 'content-type': 'text/javascript' }).end(readFileSync(join(BUNDLE_DIR, name)));
    });
    await new Promise<void>((r) => pages.listen(0, '127.0.0.1', r));
    cleanup.add('pages', () => new Promise((r) => pages.close(r)));
    cleanup.add('pages conns', () => pages.closeAllConnections());
    pageURL = `http://127.0.0.1:${(pages.address() as AddressInfo).port}/`;
    const { chromium } = await import('playwright-core');
    context = await chromium.launchPersistentContext(await tempDir(cleanup, 'qs-chromium-'), {
      executablePath: CHROMIUM,
      headless: true,
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
    });
    cleanup.add('chromium', () => context.close());
  });

  /** Opens the page, joins with `opts`, fetches `url`, and (with `reload`) joins again from IndexedDB. */
  async function inPage(opts: Record<string, unknown>, url: string, reload = false): Promise<PageResult> {
    const page = await context.newPage();
    const log: string[] = [];
    page.on('console', (m) => log.push(m.text()));
    page.on('pageerror', (e) => log.push(`pageerror: ${e.message}`));
    await page.goto(pageURL);
    const result: PageResult = await page.evaluate(
      async ({ opts, url, reload }) => {
        // In the page: globalThis is its window (this file compiles without the DOM library).
        const w = globalThis as unknown as PageWindow & EventTarget;
        if (!w.Tailnet) await new Promise((r) => w.addEventListener('quackscale', r, { once: true }));
        const Tailnet = w.Tailnet!;
        const hex = (b: ArrayBuffer) =>
          [...new Uint8Array(b)].map((x) => x.toString(16).padStart(2, '0')).join('');
        const tn = new Tailnet(opts);
        try {
          const st = await tn.up();
          const res = await tn.fetch(url);
          const body = await res.arrayBuffer();
          const peer = tn.status().peers.find((p) => url.includes(`//${p.hostname}:`));
          const out: PageResult = {
            address: st.self.addresses[0],
            status: res.status,
            bytes: body.byteLength,
            sha256: hex(await crypto.subtle.digest('SHA-256', body)),
            path: peer?.path,
          };
          await tn.close();
          if (reload) {
            // A new node object from the same IndexedDB state, with no auth key: the same node comes back.
            const again = new Tailnet({ ...opts, authKey: undefined });
            out.again = (await again.up()).self.addresses[0];
            await again.close();
          }
          return out;
        } catch (err) {
          await tn.close().catch(() => undefined);
          return { error: err instanceof Error ? `${err.name}: ${err.message}\n${err.stack}` : String(err) };
        }
      },
      { opts, url, reload },
    );
    await page.close();
    if (result.error) throw new Error(`${result.error}\npage console:\n${log.join('\n')}`);
    return result;
  }

  it('joins Headscale with an auth key and fetches a file from a tailscaled peer by MagicDNS name', async () => {
    const derper = await Derper.start(cleanup);
    const hs = await Headscale.start(cleanup, { derpPort: derper.port });
    const key = await hs.createKey(await hs.createUser('browser'), { reusable: true, ephemeral: true });
    const ts = await Tailscaled.start(cleanup, 'files');
    await ts.up(hs.url, key, 'ts-files');
    // What a page's server would hand it: Headscale's key, since a page on another origin cannot read /key.
    const controlKey = (await fetchServerKeyWeb(hs.url, 100)).toString();
    const t0 = Date.now();
    const r = await inPage(
      { controlURL: hs.url, authKey: key, hostname: 'page-hs', controlKey },
      `http://ts-files:${httpPort}/blob`,
    );
    console.log(`[chromium + Headscale] up and ${blob.length} bytes in ${Date.now() - t0} ms over ${r.path}`);
    expect(r.address).toMatch(/^100\.64\./);
    expect([r.status, r.bytes, r.sha256]).toEqual([200, blob.length, sha(blob)]);
    expect(r.path).toBe('derp local');
    // tailscaled saw the page as a peer reached over DERP.
    await waitFor(
      'tailscaled sees the page',
      async () =>
        Object.values((await ts.status()).Peer ?? {}).some((p) => p.HostName === 'page-hs')
          ? true
          : undefined,
      10_000,
      200,
    );
  });

  it('joins our embedded control server (fetching /key across origins) and keeps its node in IndexedDB', async () => {
    const local = await startLocalTailnet({ stateDir: await tempDir(cleanup, 'qs-local-'), stunPort: -1 });
    cleanup.add('local tailnet', () => local.close());
    const key = await local.authKey();
    const ts = await Tailscaled.start(cleanup, 'files-local');
    await ts.up(local.controlURL, key, 'ts-files');
    const r = await inPage(
      { controlURL: local.controlURL, authKey: key, hostname: 'page-local', state: { indexedDB: 'qs-test' } },
      `http://ts-files:${httpPort}/blob`,
      true,
    );
    expect(r.address).toMatch(/^100\.64\./);
    expect([r.status, r.bytes, r.sha256]).toEqual([200, blob.length, sha(blob)]);
    expect(r.path).toBe('derp local');
    expect(r.again).toBe(r.address);
  });
});
