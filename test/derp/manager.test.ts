// The connection manager and the DERP Bind against our own servers: home region and NotePreferred,
// reconnection with backoff after the server restarts (handlers kept), on-demand regions closed when idle,
// packets held while connecting, latency-based home choice, and two WireGuard devices pinging each other over
// DERP.
import { afterEach, describe, expect, it } from 'vitest';
import { Backoff } from '../../src/derp/backoff.js';
import { DerpBind, DerpEndpoint } from '../../src/derp/bind.js';
import type { DerpMap } from '../../src/derp/derpmap.js';
import { parseDerpMap } from '../../src/derp/derpmap.js';
import { DerpHttpServer } from '../../src/derp/http-server.js';
import { generateNodeKeyPair, keyToHex } from '../../src/derp/keys.js';
import { DerpClientManager } from '../../src/derp/manager.js';
import { Stack } from '../../src/netstack/stack.js';
import { Device } from '../../src/wireguard/device.js';
import { until } from './helpers.js';

const open: Array<{ close(): unknown }> = [];
afterEach(async () => {
  for (const o of open.splice(0).reverse()) await o.close();
});

async function server(port = 0, stun = false): Promise<DerpHttpServer> {
  const s = await DerpHttpServer.listen({ port, ...(stun ? { stunPort: 0 } : {}) });
  open.push(s);
  return s;
}

function mapOf(...servers: Array<{ id: number; port: number; stunPort?: number }>): DerpMap {
  const Regions: DerpMap['Regions'] = {};
  for (const s of servers) {
    Regions[String(s.id)] = {
      RegionID: s.id,
      RegionCode: `r${s.id}`,
      RegionName: `region ${s.id}`,
      Nodes: [
        {
          Name: `${s.id}a`,
          RegionID: s.id,
          HostName: '127.0.0.1',
          DERPPort: s.port,
          STUNPort: s.stunPort ?? -1,
        },
      ],
    };
  }
  return parseDerpMap(JSON.stringify({ Regions }));
}

function manager(derpMap: DerpMap, extra: Partial<ConstructorParameters<typeof DerpClientManager>[0]> = {}) {
  const m = new DerpClientManager({
    privateKey: generateNodeKeyPair().privateKey,
    derpMap,
    useHttp: true,
    ...extra,
  });
  open.push(m);
  return m;
}

describe('Backoff', () => {
  it('grows as n² × 10 ms, capped, with jitter in [0.5, 1.5)', () => {
    const lo = new Backoff(5000, () => 0);
    expect([1, 2, 3, 4].map(() => lo.next())).toEqual([5, 20, 45, 80]);
    const hi = new Backoff(500, () => 0.999);
    for (let i = 0; i < 10; i++) hi.next();
    expect(hi.next()).toBeCloseTo(749.5);
    hi.reset();
    expect(hi.consecutiveFailures).toBe(0);
  });
});

describe('DerpClientManager', () => {
  it('home region with NotePreferred; reconnects after a restart and keeps its handlers', async () => {
    const s1 = await server();
    const port = s1.port;
    const map = mapOf({ id: 1, port });
    const a = manager(map, { maxBackoffMs: 200 });
    const b = manager(map, { maxBackoffMs: 200 });
    const got: string[] = [];
    b.onPacket((region, src, data) => {
      expect(Buffer.compare(src, a.publicKey)).toBe(0);
      got.push(`${region}:${Buffer.from(data).toString()}`);
    });
    await a.setHome(1);
    await b.setHome(1);
    await until('preferred', () => (s1.derp.metrics.currentHomeConnections === 2 ? true : undefined));
    a.send(1, b.publicKey, Buffer.from('one'));
    await until('one', () => (got.length === 1 ? true : undefined));
    await s1.close();
    await until('lost', () => (!a.isConnected(1) && !b.isConnected(1) ? true : undefined));
    const s2 = await server(port);
    await until('back', () => (a.connectCount(1) === 2 && b.connectCount(1) === 2 ? true : undefined), 8000);
    await until('preferred again', () => (s2.derp.metrics.currentHomeConnections === 2 ? true : undefined));
    a.send(1, b.publicKey, Buffer.from('two'));
    await until('two', () => (got.length === 2 ? true : undefined));
    expect(got).toEqual(['1:one', '1:two']);
  });

  it('reconnect() drops the connection and dials again at once (after the host moved)', async () => {
    const s = await server();
    const map = mapOf({ id: 1, port: s.port });
    const a = manager(map, { maxBackoffMs: 5000 });
    const b = manager(map);
    const got: string[] = [];
    b.onPacket((_region, _src, data) => got.push(Buffer.from(data).toString()));
    await a.setHome(1);
    await b.setHome(1);
    a.reconnect();
    await until('redialled', () => (a.connectCount(1) === 2 && a.isConnected(1) ? true : undefined));
    a.send(1, b.publicKey, Buffer.from('after'));
    await until('delivered', () => (got.length === 1 ? true : undefined));
    expect(got).toEqual(['after']);
  });

  it('opens a peer region on demand, holds packets while connecting, and closes it when idle', async () => {
    const home = await server();
    const other = await server();
    const map = mapOf({ id: 1, port: home.port }, { id: 2, port: other.port });
    const a = manager(map, { idleTimeoutMs: 300 });
    const b = manager(map, { idleTimeoutMs: 300 });
    await a.setHome(1);
    await b.setHome(2);
    const got: number[] = [];
    b.onPacket((region) => got.push(region));
    for (let i = 0; i < 3; i++) expect(a.send(2, b.publicKey, new Uint8Array(100))).toBe(true);
    expect(a.activeRegions).toEqual([1, 2]);
    await until('delivered', () => (got.length === 3 ? true : undefined));
    expect(got).toEqual([2, 2, 2]);
    await until('idle region closed', () => (a.activeRegions.length === 1 ? true : undefined), 3000);
    expect(a.activeRegions).toEqual([1]);
    expect(a.isConnected(1)).toBe(true);
    expect(b.activeRegions).toEqual([2]);
  });

  it('measures latency by STUN and HTTP and picks a reachable region as home', async () => {
    const s = await server(0, true);
    const dead = await server();
    const deadPort = dead.port;
    await dead.close();
    const map = mapOf({ id: 7, port: s.port, stunPort: s.stun!.port }, { id: 8, port: deadPort });
    const m = manager(map);
    const lat = await m.measureLatency(500);
    expect([...lat.keys()]).toEqual([7]);
    expect(lat.get(7)).toBeLessThan(500);
    expect(await m.pickHome(500)).toBe(7);
    expect(m.isConnected(7)).toBe(true);
    expect(s.stun!.answered).toBeGreaterThan(0);
  });

  it('keeps home unless another region is 10 ms and a third faster (netcheck hysteresis)', async () => {
    const { choosePreferredRegion } = await import('../../src/derp/latency.js');
    const map = mapOf({ id: 1, port: 1 }, { id: 2, port: 2 }, { id: 3, port: 3 });
    map.Regions['3']!.Avoid = true;
    expect(
      choosePreferredRegion(
        new Map([
          [1, 30],
          [2, 25],
        ]),
        undefined,
        map,
      ),
    ).toBe(2);
    expect(
      choosePreferredRegion(
        new Map([
          [1, 30],
          [2, 25],
        ]),
        1,
        map,
      ),
    ).toBe(1);
    expect(
      choosePreferredRegion(
        new Map([
          [1, 60],
          [2, 45],
        ]),
        1,
        map,
      ),
    ).toBe(1);
    expect(
      choosePreferredRegion(
        new Map([
          [1, 60],
          [2, 39],
        ]),
        1,
        map,
      ),
    ).toBe(2);
    expect(choosePreferredRegion(new Map([[2, 39]]), 1, map)).toBe(2);
    expect(choosePreferredRegion(new Map([[3, 1]]), undefined, map)).toBeUndefined();
  });

  it('refuses a region missing from the map with a typed error', async () => {
    const m = manager(mapOf({ id: 1, port: 1 }));
    await expect(m.setHome(99)).rejects.toMatchObject({ code: 'BAD_CONFIG' });
  });
});

describe('DerpBind', () => {
  it('endpoints are derp:<hex node key>; junk is a typed error', async () => {
    const s = await server();
    const bind = await DerpBind.open({
      privateKey: generateNodeKeyPair().privateKey,
      derpMap: mapOf({ id: 1, port: s.port }),
      homeRegion: 1,
      useHttp: true,
    });
    open.push(bind);
    const k = generateNodeKeyPair().publicKey;
    const ep = bind.parseEndpoint(`derp:${keyToHex(k)}`);
    expect(ep).toBeInstanceOf(DerpEndpoint);
    expect(ep.key).toBe(`derp:${keyToHex(k)}`);
    expect(bind.parseEndpoint(keyToHex(k))).toBe(ep);
    expect(ep.toString()).not.toContain(keyToHex(k));
    expect(() => bind.parseEndpoint('derp:xyz')).toThrow(expect.objectContaining({ code: 'BAD_CONFIG' }));
  });

  it('two WireGuard devices ping each other through our server', async () => {
    const s = await server();
    const map = mapOf({ id: 1, port: s.port });
    const nodes = await Promise.all(
      ['10.66.0.1', '10.66.0.2'].map(async (ip) => {
        const { privateKey, publicKey } = generateNodeKeyPair();
        const bind = await DerpBind.open({ privateKey, derpMap: map, homeRegion: 1, useHttp: true });
        const device = new Device({ privateKey, bind });
        const stack = new Stack(device, { addresses: [`${ip}/24`] });
        open.push(
          { close: () => bind.close() },
          { close: () => device.close() },
          { close: () => stack.close() },
        );
        return { publicKey, bind, device, stack, ip };
      }),
    );
    const [a, b] = nodes as [(typeof nodes)[0], (typeof nodes)[0]];
    a.device.addPeer({
      publicKey: b.publicKey,
      endpoint: a.bind.endpointFor(b.publicKey),
      allowedIPs: [`${b.ip}/32`],
    });
    b.device.addPeer({
      publicKey: a.publicKey,
      endpoint: b.bind.endpointFor(a.publicKey),
      allowedIPs: [`${a.ip}/32`],
    });
    for (let seq = 1; seq <= 3; seq++) {
      const r = await a.stack.ping(b.ip, { seq, size: 1300, timeoutMs: 3000 });
      expect(r.bytes).toBe(1308);
    }
    expect((await b.stack.ping(a.ip, { timeoutMs: 3000 })).from).toBe(a.ip);
    expect(s.derp.metrics.packetsSent).toBeGreaterThanOrEqual(10);
  });
});
