import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { DerpMap } from '../../src/derp/derpmap.js';
import type { AddrPort } from '../../src/tailnet/disco.js';
import {
  ACTIVE_TIMEOUT_MS,
  EndpointDiscovery,
  LINK_POLL_MS,
  RESTUN_MAX_MS,
} from '../../src/tailnet/endpoints.js';

const MAP: DerpMap = {
  Regions: {
    '1': {
      RegionID: 1,
      RegionCode: 'x',
      RegionName: 'x',
      Nodes: [{ Name: '1a', RegionID: 1, HostName: 'derp.test', IPv4: '203.0.113.1', STUNPort: 3478 }],
    },
  },
} as DerpMap;

function rig() {
  const state = {
    links: ['192.168.1.10:41641'],
    seen: { ip: '198.51.100.7', port: 41641 } as AddrPort | undefined,
    sends: 0,
    stuns: 0,
    reported: [] as string[][],
    linkChanges: 0,
  };
  const d = new EndpointDiscovery({
    port: 41641,
    stun: async () => {
      state.stuns++;
      return state.seen;
    },
    derpMap: () => MAP,
    sends: () => state.sends,
    onEndpoints: (eps) => state.reported.push(eps),
    onLinkChange: () => state.linkChanges++,
    interfaces: () => state.links,
  });
  return { d, state };
}

describe('EndpointDiscovery', () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('starts with the interface endpoints and adds what STUN sees, reporting only changes', async () => {
    const { d, state } = rig();
    expect(d.endpoints).toEqual(['192.168.1.10:41641']);
    await d.update('initial');
    expect(state.reported).toEqual([['192.168.1.10:41641', '198.51.100.7:41641']]);
    await d.update('again');
    expect(state.reported.length).toBe(1);
    // STUN stops answering (UDP blocked): the public endpoint is no longer advertised.
    state.seen = undefined;
    await d.update('blocked');
    expect(state.reported.at(-1)).toEqual(['192.168.1.10:41641']);
    d.close();
  });

  it('re-STUNs every 20–26 s while the node sends, and not when it has been idle', async () => {
    const { d, state } = rig();
    await d.update('initial');
    state.seen = { ip: '198.51.100.7', port: 50000 }; // the NAT mapping changed
    state.sends = 10;
    await vi.advanceTimersByTimeAsync(RESTUN_MAX_MS);
    expect(state.reported.at(-1)).toEqual(['192.168.1.10:41641', '198.51.100.7:50000']);
    // Idle (no new sends) for longer than ACTIVE_TIMEOUT_MS: no more STUN.
    await vi.advanceTimersByTimeAsync(ACTIVE_TIMEOUT_MS + RESTUN_MAX_MS);
    const stuns = state.stuns;
    await vi.advanceTimersByTimeAsync(3 * RESTUN_MAX_MS);
    expect(state.stuns).toBe(stuns);
    // Sending again: the next tick STUNs (and so may the one after, within ACTIVE_TIMEOUT_MS).
    state.sends++;
    await vi.advanceTimersByTimeAsync(RESTUN_MAX_MS);
    expect(state.stuns).toBeGreaterThan(stuns);
    d.close();
  });

  it('on a change of the host addresses: onLinkChange, then the new endpoints', async () => {
    const { d, state } = rig();
    await d.update('initial');
    state.links = ['192.168.3.10:41641'];
    state.seen = { ip: '198.51.100.9', port: 41641 };
    await vi.advanceTimersByTimeAsync(LINK_POLL_MS);
    expect(state.linkChanges).toBe(1);
    expect(state.reported.at(-1)).toEqual(['192.168.3.10:41641', '198.51.100.9:41641']);
    d.close();
  });

  it('a request during a run makes one more run after it', async () => {
    const { d, state } = rig();
    const first = d.update('a');
    void d.update('b');
    void d.update('c');
    await first;
    await vi.advanceTimersByTimeAsync(0);
    expect(state.stuns).toBe(2);
    d.close();
  });

  it('leaves no timers after close', () => {
    const { d } = rig();
    d.close();
    expect(vi.getTimerCount()).toBe(0);
  });
});
