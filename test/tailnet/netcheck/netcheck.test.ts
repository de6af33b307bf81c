// netcheck (netcheck/netcheck.ts) against STUN servers on loopback: our STUN server, STUN responders that
// report chosen mappings (to stand in for a NAT that maps each destination anew, which the NAT lab
// shows for real), silent regions, and UDP gone entirely (the HTTPS fallback to our TLS relay).
import dgram from 'node:dgram';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { DerpMap } from '../../../src/derp/derpmap.js';
import { parseBindingRequest, StunServer, stunResponse } from '../../../src/derp/stun.js';
import { startLocalTailnet } from '../../../src/tailnet/local.js';
import { runNetcheck } from '../../../src/tailnet/netcheck/netcheck.js';
import { formatNetcheck, goDuration } from '../../../src/tailnet/netcheck/report.js';

const closers: Array<() => unknown> = [];
afterEach(async () => {
  for (const c of closers.splice(0)) await c();
});

/** A region of one node: STUN at 127.0.0.1:`stun` (-1: none), DERP at `derp`. */
function region(id: number, stun: number, extra: Record<string, unknown> = {}) {
  return {
    RegionID: id,
    RegionCode: `r${id}`,
    RegionName: `Region ${id}`,
    Nodes: [
      {
        Name: `${id}a`,
        RegionID: id,
        HostName: '127.0.0.1',
        IPv4: '127.0.0.1',
        IPv6: 'none',
        STUNPort: stun,
        DERPPort: 1,
        ...extra,
      },
    ],
  };
}
const mapOf = (...regions: ReturnType<typeof region>[]): DerpMap => ({
  Regions: Object.fromEntries(regions.map((r) => [String(r.RegionID), r])),
});

/** A STUN responder on 127.0.0.1 that says every request came from `mapped` (a NAT's mapping of it). */
async function lyingStun(mapped: { ip: string; port: number }): Promise<number> {
  const s = dgram.createSocket('udp4');
  s.on('message', (msg, from) => {
    s.send(stunResponse(parseBindingRequest(msg), mapped.ip, mapped.port), from.port, from.address);
  });
  await new Promise<void>((r) => s.bind(0, '127.0.0.1', r));
  closers.push(() => new Promise<void>((r) => s.close(() => r())));
  return s.address().port;
}

/** A UDP port on 127.0.0.1 that never answers. */
async function silentPort(): Promise<number> {
  const s = dgram.createSocket('udp4');
  await new Promise<void>((r) => s.bind(0, '127.0.0.1', r));
  closers.push(() => new Promise<void>((r) => s.close(() => r())));
  return s.address().port;
}

describe('runNetcheck', () => {
  it('UDP over IPv4, our public endpoint, latency per region and the nearest; a silent region has none', async () => {
    const a = await StunServer.listen({ host: '127.0.0.1', port: 0, otherFamily: false });
    closers.push(() => a.close());
    const silent = await silentPort();
    const map = mapOf(region(1, a.port), region(2, silent));
    const t0 = performance.now();
    const r = await runNetcheck(map, { haveV4: true, haveV6: false });
    expect(performance.now() - t0).toBeLessThan(4000); // STUN gives up after 3 s
    expect(r).toMatchObject({
      UDP: true,
      IPv4: true,
      IPv6: false,
      IPv4CanSend: true,
      PreferredDERP: 1,
      ICMPv4: false,
    });
    expect(r.GlobalV4).toMatch(/^127\.0\.0\.1:\d+$/);
    expect(r.GlobalV4Counters).toEqual({ [r.GlobalV4]: 1 });
    expect(Object.keys(r.RegionLatency)).toEqual(['1']);
    expect(r.RegionLatency['1']).toBeGreaterThan(0);
    expect(r.RegionV4Latency).toEqual(r.RegionLatency);
    expect(r.MappingVariesByDestIP).toBeNull(); // one answer: unknown, as tailscale says it
  });

  it('two STUN servers that see one mapping: MappingVariesByDestIP false; different ones: true', async () => {
    const same = await runNetcheck(
      mapOf(
        region(1, await lyingStun({ ip: '198.51.100.7', port: 41641 })),
        region(2, await lyingStun({ ip: '198.51.100.7', port: 41641 })),
      ),
      { haveV4: true, haveV6: false },
    );
    expect(same).toMatchObject({ MappingVariesByDestIP: false, GlobalV4: '198.51.100.7:41641' });
    expect(same.GlobalV4Counters).toEqual({ '198.51.100.7:41641': 2 });
    const varies = await runNetcheck(
      mapOf(
        region(1, await lyingStun({ ip: '198.51.100.7', port: 1000 })),
        region(2, await lyingStun({ ip: '198.51.100.7', port: 2000 })),
      ),
      { haveV4: true, haveV6: false },
    );
    expect(varies.MappingVariesByDestIP).toBe(true);
    expect(Object.keys(varies.GlobalV4Counters ?? {}).sort()).toEqual([
      '198.51.100.7:1000',
      '198.51.100.7:2000',
    ]);
  });

  it('no UDP answer at all: the latency comes over HTTPS from the relay, and the report says UDP false', async () => {
    const local = await startLocalTailnet({
      stateDir: mkdtempSync(join(tmpdir(), 'qs-netcheck-')),
      stunPort: -1,
    });
    closers.push(() => local.close());
    const silent = await silentPort();
    // The embedded relay's region (TLS, pinned) with a STUN port nobody answers on.
    const reg = local.derpMap.Regions['900']!;
    const map = {
      Regions: { '900': { ...reg, Nodes: [{ ...reg.Nodes[0]!, STUNPort: silent }] } },
    } as DerpMap;
    const r = await runNetcheck(map, { haveV4: true, haveV6: false });
    expect(r).toMatchObject({ UDP: false, GlobalV4: '', MappingVariesByDestIP: null, PreferredDERP: 900 });
    expect(r.RegionLatency['900']).toBeGreaterThan(0);
    expect(r.RegionV4Latency).toEqual({});
  });

  it('a map whose nodes have no STUN and no reachable relay: an empty report, no throw', async () => {
    const r = await runNetcheck(
      mapOf(region(5, -1, { HostName: '127.0.0.1', DERPPort: await silentPort() })),
      {
        haveV4: true,
        haveV6: false,
      },
    );
    expect(r).toMatchObject({ UDP: false, PreferredDERP: 0, RegionLatency: {} });
  });
});

describe('the report as text', () => {
  it("prints tailscale netcheck's layout, latencies as Go durations rounded to 0.1 ms", () => {
    expect([
      goDuration(312_000),
      goDuration(1_250_000),
      goDuration(12_000_000),
      goDuration(1_234_560_000),
    ]).toEqual(['300µs', '1.3ms', '12ms', '1.2346s']);
    const map = mapOf(region(1, 3478), region(2, 3478));
    const text = formatNetcheck(
      {
        Now: '2026-12-07T12:00:00.000Z',
        UDP: true,
        IPv6: false,
        IPv4: true,
        IPv6CanSend: false,
        IPv4CanSend: true,
        OSHasIPv6: true,
        ICMPv4: false,
        MappingVariesByDestIP: false,
        UPnP: null,
        PMP: null,
        PCP: null,
        PreferredDERP: 2,
        RegionLatency: { '1': 9_000_000, '2': 1_500_000 },
        RegionV4Latency: { '1': 9_000_000, '2': 1_500_000 },
        RegionV6Latency: {},
        GlobalV4Counters: { '203.0.113.11:41641': 2 },
        GlobalV6Counters: null,
        GlobalV4: '203.0.113.11:41641',
        GlobalV6: '',
        CaptivePortal: null,
      },
      map,
    );
    expect(text).toBe(
      [
        '',
        'Report:',
        '\t* Time: 2026-12-07T12:00:00.000Z',
        '\t* UDP: true',
        '\t* IPv4: yes, 203.0.113.11:41641',
        '\t* IPv6: no, but OS has support',
        '\t* MappingVariesByDestIP: false',
        '\t* PortMapping: not checked',
        '\t* Nearest DERP: Region 2',
        '\t* DERP latency:',
        '\t\t-  r2: 1.5ms   (Region 2)',
        '\t\t-  r1: 9ms     (Region 1)',
        '',
      ].join('\n'),
    );
  });
});
