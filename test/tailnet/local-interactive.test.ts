// Tailnet.login() (no auth key) on the embedded local tailnet, approved in-process with LocalTailnet.approve().
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type LocalTailnet, startLocalTailnet } from '../../src/tailnet/local.js';
import { Tailnet } from '../../src/tailnet/tailnet.js';

const dirs: string[] = [];
const tmp = (p: string) => {
  const d = mkdtempSync(join(tmpdir(), p));
  dirs.push(d);
  return d;
};
const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

describe('interactive login on the embedded local tailnet', () => {
  let local: LocalTailnet;
  const nodes: Tailnet[] = [];
  beforeAll(async () => {
    delete process.env.TS_AUTHKEY; // the node under test must have no auth key
    local = await startLocalTailnet({ stateDir: tmp('qs-local-'), stunPort: -1 });
  });
  afterAll(async () => {
    for (const n of nodes) await n.close();
    await local.close();
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  it('a node logs in with login(), the test approves its AuthURL, and it reaches a peer with bytes intact', async () => {
    const server = new Tailnet({
      hostname: 'keyed',
      controlURL: local.controlURL,
      authKey: await local.authKey(),
      stateDir: tmp('qs-node-'),
      endpoints: [],
    });
    nodes.push(server);
    await server.up();
    const listener = await server.listen(7000);
    listener.on('connection', (s) => {
      const h = createHash('sha256');
      let n = 0;
      s.on('data', (d: Buffer) => {
        h.update(d);
        n += d.length;
      });
      s.on('end', () => s.end(`${n} ${h.digest('hex')}`));
    });

    const urls: string[] = [];
    const approvals: Promise<unknown>[] = [];
    const tn = new Tailnet({
      hostname: 'interactive',
      controlURL: local.controlURL,
      stateDir: tmp('qs-node-'),
      endpoints: [],
      onAuthURL: (url) => {
        urls.push(url);
        approvals.push(local.approve(url, { user: 'dana' }));
      },
    });
    nodes.push(tn);
    const st = await tn.login();
    expect(urls).toHaveLength(1);
    expect(urls[0]).toMatch(new RegExp(`^${local.controlURL}/register/[A-Za-z0-9_-]{32}$`));
    const [approved] = (await Promise.all(approvals)) as {
      name: string;
      addresses: string[];
      user: string;
    }[];
    expect(approved).toMatchObject({ name: 'interactive', user: 'dana' });
    expect(st.self.addresses).toContain(approved!.addresses[0]);

    const data = randomBytes(256 * 1024);
    const sock = await tn.dial('keyed', 7000);
    let reply = '';
    sock.on('data', (d) => (reply += d));
    await new Promise((r) => {
      sock.on('close', r);
      sock.end(data);
    });
    expect(reply).toBe(`${data.length} ${sha(data)}`);
  });
});
