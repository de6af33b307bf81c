// Expectations shared by the NAT lab's test files (natlab-*.test.ts).
import { expect } from 'vitest';
import type { Host } from './rig/natlab.js';
import type { LabNode } from './rig/natlab-nodes.js';
import type { TailnetLab } from './rig/natlab-tailnet.js';

const MB = 1024 * 1024;

/** The address a node behind `host`'s router shows up as: the router's public address, and its port. */
export const publicOf = (host: Host, port: number): string => `${host.site.wan4}:${port}`;

/** Both directions direct, each to the other's public (router) address and the node's own port. */
export async function expectDirectThroughNats(a: LabNode, b: LabNode): Promise<void> {
  expect(await a.waitDirect(b)).toBe(publicOf(b.host, b.port));
  expect(await b.waitDirect(a)).toBe(publicOf(a.host, a.port));
}

/** `mb` MiB from `b` to `a` and back again, through `a`'s SOCKS5: every byte arrives (length and sha256). */
export async function expectTransfers(t: TailnetLab, a: LabNode, b: LabNode, mb: number): Promise<void> {
  const down = await a.download(b, mb);
  expect([down.bytes, down.sha256]).toEqual([mb * MB, t.blob.sha256(mb)]);
  const up = await a.upload(b, mb);
  expect([up.bytes, up.sha256]).toEqual([mb * MB, t.blob.sha256(mb)]);
  console.log(
    `[natlab] ${a.name} ↔ ${b.name}: ${mb} MB down in ${Math.round(down.ms)} ms, up in ${Math.round(up.ms)} ms`,
  );
}
