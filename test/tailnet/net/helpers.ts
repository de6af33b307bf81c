// Two of our nodes on the embedded control server and DERP relay, in process, with direct UDP on
// loopback: the rig for the Node-library hooks (tn.net, Agents, the dispatcher, servers).
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Duplex } from 'node:stream';
import { type LocalTailnet, startLocalTailnet } from '../../../src/tailnet/local.js';
import { Tailnet } from '../../../src/tailnet/tailnet.js';

export interface TwoNodes {
  local: LocalTailnet;
  /** alpha: the client side. */
  a: Tailnet;
  /** bravo: the server side. */
  b: Tailnet;
  bIPv4: string;
  /** `<length> <sha256 hex>` of a buffer: what {@link hashReplyServer} answers. */
  digest(data: Buffer): string;
  close(): Promise<void>;
}

export async function twoNodes(): Promise<TwoNodes> {
  const dir = mkdtempSync(join(tmpdir(), 'qs-net-'));
  const local = await startLocalTailnet({ stateDir: join(dir, 'control') });
  const node = async (hostname: string) => {
    const tn = new Tailnet({
      hostname,
      controlURL: local.controlURL,
      authKey: await local.authKey(),
      stateDir: join(dir, hostname),
      endpoints: ['127.0.0.1:0'],
    });
    await tn.up();
    return tn;
  };
  const a = await node('alpha');
  const b = await node('bravo');
  // Both must see each other before the tests dial by name.
  for (const [n, peer] of [
    [a, 'bravo'],
    [b, 'alpha'],
  ] as const) {
    while (!n.peers().some((p) => p.name.startsWith(peer))) await new Promise((r) => setTimeout(r, 50));
  }
  return {
    local,
    a,
    b,
    bIPv4: b.status().self.addresses.find((x) => net.isIPv4(x))!,
    digest: (data) => `${data.length} ${createHash('sha256').update(data).digest('hex')}`,
    async close() {
      await a.close();
      await b.close();
      await local.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** A server (never listening itself: fed by tn.listen) that answers `<length> <sha256>` of what it read. */
export function hashReplyServer(): net.Server {
  return net.createServer((s) => {
    s.on('error', () => {}); // a client that resets is the client's test's business
    const h = createHash('sha256');
    let n = 0;
    s.on('data', (d: Buffer) => {
      h.update(d);
      n += d.length;
    });
    s.on('end', () => s.end(`${n} ${h.digest('hex')}`));
  });
}

/** Sends `data`, half-closes, and resolves with the reply of a {@link hashReplyServer} split in two. */
export async function echoed(sock: Duplex, data: Buffer): Promise<[number, string]> {
  const chunks: Buffer[] = [];
  sock.on('data', (d: Buffer) => chunks.push(d));
  await new Promise((resolve, reject) => {
    sock.on('error', reject);
    sock.on('close', resolve);
    sock.end(data);
  });
  const [n, hash] = Buffer.concat(chunks).toString().split(' ');
  return [Number(n), hash!];
}
