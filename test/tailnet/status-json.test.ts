// `tailscale status --json`'s shape from our node (status-json.ts), on the embedded local tailnet: the
// fields scripts read, before any traffic, after it, and before up / after close.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LocalTailnet } from '../../src/tailnet/local.js';
import { GO_ZERO_TIME } from '../../src/tailnet/status-json.js';
import { Tailnet } from '../../src/tailnet/tailnet.js';
import { type LocalPair, localPair, tmp } from './local-pair.js';

describe('tailscaleStatus()', () => {
  let pair: LocalPair;
  let local: LocalTailnet;
  let a: Tailnet;
  let b: Tailnet;
  beforeAll(async () => {
    pair = await localPair(['able', 'baker']);
    ({ local, a, b } = pair);
  });
  afterAll(() => pair.close());

  it('Self and the Peer map keyed by node key, as tailscaled fills them', () => {
    const st = a.tailscaleStatus();
    const bs = b.tailscaleStatus();
    expect(st).toMatchObject({
      BackendState: 'Running',
      TUN: false,
      HaveNodeKey: true,
      AuthURL: '',
      Health: [],
    });
    expect(st.TailscaleIPs).toEqual(a.status().self.addresses);
    expect(st.Self).toMatchObject({
      HostName: 'able',
      DNSName: 'able.tailnet.internal.',
      TailscaleIPs: a.status().self.addresses,
      Relay: 'local',
      Online: true,
      InNetworkMap: true,
      InMagicSock: false,
      InEngine: false,
    });
    expect(st.Self.PublicKey).toMatch(/^nodekey:[0-9a-f]{64}$/);
    expect(st.MagicDNSSuffix).toBe('tailnet.internal');
    expect(st.CurrentTailnet?.MagicDNSSuffix).toBe('tailnet.internal');
    // The peer is keyed by its node key, which is its own Self.PublicKey.
    const peer = st.Peer?.[bs.Self.PublicKey];
    expect(peer).toBeDefined();
    expect(peer).toMatchObject({
      PublicKey: bs.Self.PublicKey,
      ID: bs.Self.ID,
      NodeID: bs.Self.NodeID,
      HostName: 'baker',
      DNSName: 'baker.tailnet.internal.',
      TailscaleIPs: bs.TailscaleIPs,
      AllowedIPs: bs.TailscaleIPs!.map((ip) => (ip.includes(':') ? `${ip}/128` : `${ip}/32`)),
      Addrs: null,
      Relay: 'local',
      Online: true,
      InNetworkMap: true,
      InMagicSock: true,
    });
    expect(st.User?.[String(peer!.UserID)]?.LoginName).toBeTruthy();
    expect(JSON.parse(JSON.stringify(st))).toEqual(st); // plain JSON, nothing lost on the wire
  });

  it('traffic shows in RxBytes/TxBytes, LastHandshake, LastWrite, Active, InEngine', async () => {
    const key = b.tailscaleStatus().Self.PublicKey;
    const srv = await b.listen(7001);
    srv.on('connection', (s) => s.end('hello'));
    const sock = await a.dial('baker', 7001);
    await new Promise((r) => sock.on('end', r).resume());
    sock.destroy();
    const peer = a.tailscaleStatus().Peer![key]!;
    expect(peer.RxBytes).toBeGreaterThan(0);
    expect(peer.TxBytes).toBeGreaterThan(0);
    expect(peer.LastHandshake).not.toBe(GO_ZERO_TIME);
    expect(Date.now() - Date.parse(peer.LastHandshake)).toBeLessThan(10_000);
    expect(Date.now() - Date.parse(peer.LastWrite)).toBeLessThan(10_000);
    expect(peer).toMatchObject({ Active: true, InEngine: true, CurAddr: '' }); // DERP only: no direct address
  });

  it('NoState before up, Stopped after close, with no peers (null, as Go writes a nil map)', async () => {
    const tn = new Tailnet({ hostname: 'idle', controlURL: local.controlURL, stateDir: tmp('qs-stjson-i-') });
    const st = tn.tailscaleStatus();
    expect(st).toMatchObject({
      BackendState: 'NoState',
      Peer: null,
      TailscaleIPs: null,
      CurrentTailnet: null,
    });
    expect(st.Self.HostName).toBe('idle');
    await tn.close();
    expect(tn.tailscaleStatus().BackendState).toBe('Stopped');
  });
});
