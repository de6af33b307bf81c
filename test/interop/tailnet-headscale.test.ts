// Two of our tailnet nodes on a real Headscale with a real derper: they start on DERP, reach each other
// over WireGuard (ICMP through our stack), and disco upgrades them to the direct UDP path.
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { Tailnet, type TailnetOptions } from '../../src/tailnet/tailnet.js';
import { Derper, freePort, Headscale, missingPeers } from './control-peers.js';
import { Cleanup } from './rig/exec.js';
import { skipUnless } from './rig/requirements.js';

skipUnless(missingPeers(['headscale', 'derper']))('tailnet nodes on Headscale + derper', () => {
  const cleanup = new Cleanup();
  let hs: Headscale;
  let key = '';
  afterAll(async () => {
    expect((await cleanup.run()).map((e) => e.message)).toEqual([]);
  });
  beforeAll(async () => {
    const derper = await Derper.start(cleanup);
    hs = await Headscale.start(cleanup, { derpPort: derper.port });
    key = await hs.createKey(await hs.createUser('alice'), { reusable: true });
  });

  /** A node advertising only its loopback endpoint: tests send nothing beyond 127.0.0.1. */
  async function node(hostname: string, extra: Partial<TailnetOptions> = {}): Promise<Tailnet> {
    const port = await freePort();
    const tn = new Tailnet({
      hostname,
      controlURL: hs.url,
      authKey: key,
      stateDir: mkdtempSync(join(tmpdir(), 'qs-tn-')),
      derpHttp: true,
      port,
      endpoints: [`127.0.0.1:${port}`],
      ...extra,
    });
    cleanup.add(`close ${hostname}`, () => tn.close());
    await tn.up();
    return tn;
  }

  it('ping over DERP only, then a direct path after disco', async () => {
    const a = await node('alpha');
    const b = await node('bravo', { derpOnly: true });
    const bIp = b.status().self.addresses[0]!;
    expect(bIp).toMatch(/^100\.64\./);
    await a.up(); // idempotent
    // B never uses direct UDP: everything between them rides the derper.
    const r = await a.stack!.ping(bIp, { size: 1000, timeoutMs: 8000 });
    expect(r.from).toBe(bIp);
    expect(a.status().peers.find((p) => p.hostname === 'bravo')!.path).toBe('derp local');
    const c = await node('charlie');
    await c.stack!.ping(a.status().self.addresses[0]!, { timeoutMs: 8000 });
    const p = await c.ping('alpha');
    expect(p.node).toBe('alpha');
    // After a disco pong on the loopback endpoint the path is direct.
    await new Promise((res) => setTimeout(res, 500));
    const st = c.status().peers.find((x) => x.hostname === 'alpha')!;
    expect(st.path).toMatch(/^direct 127\.0\.0\.1:\d+$/);
    expect(st.lastHandshake).toBeDefined();
    expect(st.rxBytes).toBeGreaterThan(0);
    expect((await c.ping('alpha.tailnet.test')).via).toMatch(/^127\.0\.0\.1:\d+$/);
    await expect(c.ping('nobody')).rejects.toThrow(/unknown tailnet host 'nobody'/);
  });

  it('TCP both ways over the tailnet: 20 MB intact, HTTP via fetch, serveLocal, forward, whois', async () => {
    const a = await node('delta');
    const b = await node('echo');
    // A listener on B that hashes what it gets and answers with its own 20 MB.
    const server = await b.listen(7000);
    const down = randomBytes(20 * 1024 * 1024);
    const whoCalled: string[] = [];
    server.on('connection', (s) => {
      whoCalled.push(b.whois(s)?.hostname ?? '?');
      const h = createHash('sha256');
      let n = 0;
      s.on('data', (d: Buffer) => {
        h.update(d);
        n += d.length;
      });
      s.on('end', () => s.end(`${n} ${h.digest('hex')}\n`));
      s.write(down);
    });
    const up = randomBytes(20 * 1024 * 1024);
    const sock = await a.dial('echo', 7000);
    const got: Buffer[] = [];
    sock.on('data', (d: Buffer) => got.push(d));
    const closed = new Promise((r) => sock.on('close', r));
    sock.end(up);
    await closed;
    const all = Buffer.concat(got);
    expect(all.subarray(0, down.length).equals(down)).toBe(true);
    expect(all.subarray(down.length).toString()).toBe(
      `${up.length} ${createHash('sha256').update(up).digest('hex')}\n`,
    );
    expect(whoCalled).toEqual(['delta']);

    // node:http served over our listener, fetched with the WHATWG fetch over the tailnet.
    const web = http.createServer((req, res) => res.end(`hi ${req.url}`));
    (await b.listen(8000)).on('connection', (s) => web.emit('connection', s));
    const res = await a.fetch('http://echo.tailnet.test.:8000/x?y=1');
    expect(await res.text()).toBe('hi /x?y=1');

    // serveLocal on B to a loopback service, reached from A through forward on A's loopback.
    const local = net.createServer((s) => s.end('from loopback service'));
    await new Promise<void>((r) => local.listen(0, '127.0.0.1', r));
    cleanup.add('local', () => new Promise((r) => local.close(r)));
    await b.serveLocal(9000, (local.address() as net.AddressInfo).port);
    const fwdPort = await freePort();
    await a.forward(fwdPort, 'echo', 9000);
    const text = await new Promise<string>((resolve, reject) => {
      const c = net.connect(fwdPort, '127.0.0.1');
      let t = '';
      c.on('data', (d) => (t += d));
      c.on('end', () => resolve(t));
      c.on('error', reject);
    });
    expect(text).toBe('from loopback service');

    // A closed port is refused.
    await expect(a.dial('echo', 7999, { timeout: 5000 })).rejects.toMatchObject({ code: 'ECONNREFUSED' });
  });
});
