// createTestTailnet: whole Tailnet nodes logged in to our control server, their UDP and DERP across the
// in-memory network. Through two easy NATs and a lossy link, a node reaches another by its MagicDNS name
// (HTTP over the node's own `net`), bytes checked by length and sha256, and their path turns direct to the
// public endpoint STUN found through the NAT; a hard NAT keeps them on the relay, which still carries the
// data; the control server's ACL policy is enforced by the receiving node's packet filter.
import { createHash, randomBytes } from 'node:crypto';
import http from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { createTestTailnet, type TestTailnet } from '../../src/testing/index.js';

let tn: TestTailnet | undefined;
afterEach(async () => {
  await tn?.close();
  tn = undefined;
});

const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

/** Serves `body` at http://NAME/ on node `name`. */
async function serve(t: TestTailnet, name: string, body: Buffer): Promise<void> {
  await t.nodes.get(name)!.listen(
    80,
    http.createServer((_, res) => res.end(body)),
  );
}

/** GETs http://TO/ from node `from` through its own `net`; the body's length and sha256. */
async function get(t: TestTailnet, from: string, to: string): Promise<[number, string]> {
  const node = t.nodes.get(from)!;
  const body = await new Promise<Buffer>((resolve, reject) => {
    http
      .get({ host: to, port: 80, path: '/', agent: node.httpAgent(), timeout: 20_000 }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve(Buffer.concat(chunks)));
        res.on('error', reject);
      })
      .on('error', reject)
      .on('timeout', () => reject(new Error(`GET http://${to}/ from ${from} timed out`)));
  });
  return [body.length, sha(body)];
}

/** Polls until the path from → to is direct or `ms` pass; the last path seen. */
async function settle(t: TestTailnet, from: string, to: string, ms: number): Promise<string> {
  const end = Date.now() + ms;
  while (Date.now() < end && !t.path(from, to).startsWith('direct')) {
    await new Promise((r) => setTimeout(r, 200));
  }
  return t.path(from, to);
}

describe('createTestTailnet', () => {
  it('two easy NATs, 2% loss on one: logged in, MagicDNS, 2 MB intact, then a direct path', async () => {
    tn = await createTestTailnet({
      seed: 5,
      nodes: [{ name: 'alpha', link: { loss: 0.02, delayMs: 2 } }, { name: 'beta' }],
    });
    const alpha = tn.nodes.get('alpha')!;
    expect(alpha.status().self.addresses[0]).toMatch(/^100\.64\.0\.\d+$/);
    expect(alpha.peers().map((p) => p.hostname)).toEqual(['beta']);
    const blob = randomBytes(2 << 20);
    await serve(tn, 'beta', blob);
    expect(await get(tn, 'alpha', 'beta')).toEqual([blob.length, sha(blob)]);
    expect(await settle(tn, 'alpha', 'beta', 15_000)).toBe('direct 203.0.113.12:41641');
    expect(await settle(tn, 'beta', 'alpha', 15_000)).toBe('direct 203.0.113.11:41641');
    expect(await get(tn, 'alpha', 'beta')).toEqual([blob.length, sha(blob)]);
  });

  it('a hard NAT on both sides stays on the relay, which carries the bytes', async () => {
    tn = await createTestTailnet({
      seed: 9,
      nodes: [
        { name: 'alpha', nat: 'hard' },
        { name: 'beta', nat: 'hard' },
      ],
    });
    const blob = randomBytes(1 << 20);
    await serve(tn, 'beta', blob);
    expect(await get(tn, 'alpha', 'beta')).toEqual([blob.length, sha(blob)]);
    expect(await settle(tn, 'alpha', 'beta', 3_000)).toBe('derp mem');
  });

  it("the control server's policy is enforced: a denied port is refused, an allowed one works", async () => {
    tn = await createTestTailnet({
      seed: 3,
      nodes: [{ name: 'alpha' }, { name: 'beta' }],
      policy: { acls: [{ action: 'accept', src: ['*'], dst: ['*:80'] }] },
    });
    const blob = randomBytes(1000);
    await serve(tn, 'beta', blob);
    expect(await get(tn, 'alpha', 'beta')).toEqual([blob.length, sha(blob)]);
    const beta = tn.nodes.get('beta')!;
    await beta.listen(
      81,
      http.createServer((_, res) => res.end('no')),
    );
    const refused = await tn.nodes
      .get('alpha')!
      .dial('beta', 81)
      .then(
        (s) => {
          s.destroy();
          return 'connected';
        },
        (err: NodeJS.ErrnoException) => err.code,
      );
    expect(refused).toBe('EHOSTUNREACH');
  });

  it('rejects a bad shape before building anything', async () => {
    await expect(createTestTailnet({ nodes: [{ name: 'a' }, { name: 'a' }] })).rejects.toThrow(
      'node names must differ',
    );
  });
});
