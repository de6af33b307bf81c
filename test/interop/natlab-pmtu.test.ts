// Path MTU discovery between two of our nodes (issue 21, item 1) on a NAT lab LAN whose links carry
// 9,000-byte frames: the data's datagrams, read off the sending host's interface counters, average
// ≥ 8,000 bytes, with no IP fragments; then every link of the LAN drops to MTU 1,500 in the middle
// of a transfer: the bytes arrive intact, the size toward the peer falls back within a second, and
// after that the sender neither fragments nor sends UDP datagrams over 1,500 bytes.
import { afterAll, beforeAll, expect, it } from 'vitest';
import { Cleanup, execIn, sleep, waitFor } from './rig/exec.js';
import { txCounters as counters, type Host, type Site } from './rig/natlab.js';
import type { LabOurs } from './rig/natlab-nodes.js';
import { natlabMissing, TailnetLab } from './rig/natlab-tailnet.js';
import { skipUnless } from './rig/requirements.js';

const MB = 1024 * 1024;
const BLOB_MB = 120;

/**
 * Counts the UDP packets `host` sends that are longer than 1,500 bytes. nftables' output hook
 * sees each datagram before the kernel would fragment it; the interface counters cannot tell
 * them apart, since a TCP segment (the node's control or DERP connection) leaves a veth as one
 * GSO super-frame that they count as one large frame.
 */
async function countOversizeUdp(host: Host): Promise<() => Promise<number>> {
  const rules = [
    'table inet qspmtu',
    'delete table inet qspmtu',
    'table inet qspmtu {',
    '  chain out {',
    '    type filter hook output priority filter;',
    '    meta l4proto udp meta length > 1500 counter',
    '  }',
    '}',
    '',
  ].join('\n');
  await execIn(host.ns, 'nft', ['-f', '-'], { input: rules });
  return async () => {
    const out = (await execIn(host.ns, 'nft', ['list', 'table', 'inet', 'qspmtu'])).stdout;
    return Number(/counter packets (\d+)/.exec(out)?.[1] ?? Number.NaN);
  };
}

/** The MTU `node`'s status gives toward `peer`. */
async function mtuToward(node: LabOurs, peer: LabOurs): Promise<number> {
  const st = await node.api<{ peers: Array<{ hostname: string; mtu: number }> }>('GET', '/status');
  return st.peers.find((p) => p.hostname === peer.name)?.mtu ?? 0;
}

skipUnless(natlabMissing())('NAT lab: path MTU discovery between our nodes on a jumbo-frame LAN', () => {
  const cleanup = new Cleanup();
  let t: TailnetLab;
  let site: Site;
  let client: LabOurs;
  let server: LabOurs;

  beforeAll(async () => {
    t = await TailnetLab.create(cleanup, BLOB_MB);
    site = await t.lab.addSite('a');
    client = await t.ours(site, 'pmc');
    server = await t.ours(site, 'pms');
    await t.lab.setLanMtu(site, [client.host, server.host], 9000);
    await client.meet(server);
    await client.waitDirect(server);
    await server.waitDirect(client);
  }, 120_000);

  afterAll(async () => {
    expect((await cleanup.run()).map((e) => e.message)).toEqual([]);
  });

  it('at MTU 9,000 the datagrams of a transfer average ≥ 8,000 bytes, unfragmented, and the bytes arrive intact', async () => {
    // A first transfer has the server send, so that it probes the path toward the client.
    const warm = await client.download(server, 4);
    expect(warm).toMatchObject({ bytes: 4 * MB, sha256: t.blob.sha256(4) });
    await waitFor(
      'the server to raise the size toward the client',
      async () => ((await mtuToward(server, client)) === 8928 ? true : undefined),
      10_000,
      100,
    );
    const oversize = await countOversizeUdp(server.host);
    const before = await counters(server.host);
    const got = await client.download(server, BLOB_MB);
    const after = await counters(server.host);
    // The meter the fallback test relies on sees the jumbo datagrams here.
    expect(await oversize()).toBeGreaterThan(10_000);
    expect(got).toMatchObject({ bytes: BLOB_MB * MB, sha256: t.blob.sha256(BLOB_MB) });
    const mean = (after.bytes - before.bytes) / (after.packets - before.packets);
    console.log(
      `[natlab-pmtu] MTU 9000: ${BLOB_MB} MB in ${Math.round(got.ms)} ms, mean frame ${Math.round(mean)} bytes over ${after.packets - before.packets} packets`,
    );
    expect(mean).toBeGreaterThanOrEqual(8000);
    expect(after.frags - before.frags).toBe(0);
  }, 120_000);

  it('the LAN drops to MTU 1,500 mid-transfer: intact, the size falls back within a second, then no fragments', async () => {
    const transfer = client.download(server, BLOB_MB, { limitRate: '30M' });
    await sleep(1500);
    expect(await mtuToward(server, client)).toBe(8928);
    await t.lab.setLanMtu(site, [client.host, server.host], 1500);
    const shrunk = performance.now();
    await waitFor(
      'the server to fall back',
      async () => ((await mtuToward(server, client)) <= 1440 ? true : undefined),
      5_000,
      20,
    );
    const fellMs = performance.now() - shrunk;
    await sleep(300);
    const oversize = await countOversizeUdp(server.host);
    const before = await counters(server.host);
    await sleep(1500);
    const after = await counters(server.host);
    const oversizeSent = await oversize();
    const got = await transfer;
    console.log(
      `[natlab-pmtu] fell back ${Math.round(fellMs)} ms after the MTU dropped; then mean frame ${Math.round((after.bytes - before.bytes) / (after.packets - before.packets))} bytes, ${oversizeSent} UDP packets over 1,500 bytes`,
    );
    expect(got).toMatchObject({ bytes: BLOB_MB * MB, sha256: t.blob.sha256(BLOB_MB) });
    expect(fellMs).toBeLessThan(1000);
    expect(after.packets - before.packets).toBeGreaterThan(1000); // the transfer was still going
    expect(after.frags - before.frags).toBe(0);
    expect(oversizeSent).toBe(0);
  }, 120_000);
});
