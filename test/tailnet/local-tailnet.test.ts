// Our nodes on the embedded default (our control server + our DERP relay, in process): the whole
// stack end to end with no external peer, so it runs everywhere, fast.
import { execFile } from 'node:child_process';
import { createHash, randomBytes, X509Certificate } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { Duplex } from 'node:stream';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type LocalTailnet, startLocalTailnet } from '../../src/tailnet/local.js';
import { Tailnet, type TailnetOptions } from '../../src/tailnet/tailnet.js';
import { scriptArgv } from '../platform/run-script.js';

const tmp = (p: string) => mkdtempSync(join(tmpdir(), p));
const digest = (b: Buffer): [number, string] => [b.length, createHash('sha256').update(b).digest('hex')];

/** Sends `data` through an echo and closes; resolves with the length and SHA-256 of what came back. */
async function echoed(sock: Duplex, data: Buffer): Promise<[number, string]> {
  const h = createHash('sha256');
  let n = 0;
  sock.on('data', (d: Buffer) => {
    h.update(d);
    n += d.length;
  });
  await new Promise((r) => {
    sock.on('close', r);
    sock.end(data);
  });
  return [n, h.digest('hex')];
}
const DIST = resolve(__dirname, '../../dist/index.js');

describe('the embedded local tailnet', () => {
  let local: LocalTailnet;
  const nodes: Tailnet[] = [];
  let localDir: string;
  beforeAll(async () => {
    localDir = tmp('qs-local-');
    local = await startLocalTailnet({ stateDir: localDir });
  });
  afterAll(async () => {
    for (const n of nodes) await n.close();
    await local.close();
  });

  async function node(
    hostname: string,
    stateDir = tmp('qs-node-'),
    authKey?: string,
    extra: Partial<TailnetOptions> = {},
  ): Promise<Tailnet> {
    const tn = new Tailnet({
      hostname,
      controlURL: local.controlURL,
      authKey: authKey ?? (await local.authKey()),
      stateDir,
      endpoints: [],
      ...extra,
    });
    nodes.push(tn);
    await tn.up();
    return tn;
  }

  it('two nodes reach each other by MagicDNS name over DERP and move 8 MB intact', async () => {
    const a = await node('apple');
    const b = await node('banana');
    const srv = await b.listen(5000);
    srv.on('connection', (s) => {
      const h = createHash('sha256');
      let n = 0;
      s.on('data', (d: Buffer) => {
        h.update(d);
        n += d.length;
      });
      s.on('end', () => s.end(`${n} ${h.digest('hex')}`));
    });
    const data = randomBytes(8 * 1024 * 1024);
    const sock = await a.dial('banana.tailnet.internal', 5000);
    let reply = '';
    sock.on('data', (d) => (reply += d));
    await new Promise((r) => {
      sock.on('close', r);
      sock.end(data);
    });
    expect(reply).toBe(`${data.length} ${createHash('sha256').update(data).digest('hex')}`);
    const peer = a.status().peers.find((p) => p.hostname === 'banana')!;
    expect(peer.path).toBe('derp local');
    expect((await a.ping('banana')).via).toBe('DERP(local)');
  });

  it('the relay speaks TLS pinned in the DERP map, and plain HTTP too for nodes set to it', async () => {
    expect(local.derpURL).toMatch(/^https:\/\/127\.0\.0\.1:\d+\/derp$/);
    const pem = readFileSync(join(localDir, 'derp-cert.pem'), 'utf8');
    const raw = new X509Certificate(pem).raw;
    const node900 = local.derpMap.Regions['900']!.Nodes[0]!;
    expect(node900.CertName).toBe(`sha256-raw:${createHash('sha256').update(raw).digest('hex')}`);
    expect(statSync(join(localDir, 'derp-key.pem')).mode & 0o777).toBe(0o600);
    // One node on TLS (the default), one told to use plain HTTP: both reach the relay's one port
    // (under Node; Bun's and Deno's node:http cannot take the connection over, so TLS for both).
    const handsOver = !process.versions.bun && !process.versions.deno;
    const tls = await node('elder');
    const plain = await node('fig', undefined, undefined, { derpHttp: handsOver });
    (await tls.listen(5003)).on('connection', (s) => s.pipe(s));
    const data = randomBytes(256 * 1024);
    expect(await echoed(await plain.dial('elder', 5003), data)).toEqual(digest(data));
    expect(plain.status().peers.find((p) => p.hostname === 'elder')!.path).toBe('derp local');
  });

  it('a node reaches its own listener by its name and its address (loopback inside the stack)', async () => {
    const c = await node('cherry');
    const srv = await c.listen(5001);
    srv.on('connection', (s) => s.pipe(s));
    const data = randomBytes(1024 * 1024);
    for (const host of ['cherry', c.status().self.addresses[0]!]) {
      expect([host, ...(await echoed(await c.dial(host, 5001), data))]).toEqual([host, ...digest(data)]);
    }
  });

  it('a restarted node keeps its key and address without a new auth key', async () => {
    const dir = tmp('qs-restart-');
    const first = await node('cherry', dir);
    const addr = first.status().self.addresses;
    await first.close();
    expect(statSync(dir).mode & 0o777).toBe(0o700);
    const again = await node('cherry', dir, 'not-a-valid-key-and-not-needed');
    expect(again.status().self.addresses).toEqual(addr);
  });

  // Uses the built package (npm run build), as a user's script would.
  it.skipIf(!existsSync(DIST) && process.env.CI !== 'true')(
    'a process that closes its node exits by itself',
    async () => {
      const script = `
      import { Tailnet } from ${JSON.stringify(DIST)};
      const [controlURL, authKey, stateDir] = process.argv.slice(2);
      const tn = new Tailnet({ hostname: 'child', controlURL, authKey, stateDir, endpoints: [] });
      const st = await tn.up();
      console.log('up', st.self.addresses[0]);
      await tn.listen(8080);
      await tn.close();
      console.log('closed');`;
      // No process.exit anywhere: the child must end because nothing is left running.
      const file = join(tmp('qs-script-'), 'child.mjs');
      writeFileSync(file, script);
      const [cmd, args] = scriptArgv(file, [local.controlURL, await local.authKey(), tmp('qs-child-')]);
      const { stdout } = await promisify(execFile)(cmd, args, { timeout: 30_000 });
      expect(stdout.trim().split('\n')).toEqual([expect.stringMatching(/^up 100\.64\.\d+\.\d+$/), 'closed']);
    },
  );
});
