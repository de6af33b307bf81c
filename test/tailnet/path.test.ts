import { describe, expect, it } from 'vitest';
import type { AddrPort } from '../../src/tailnet/disco.js';
import {
  betterAddr,
  HEARTBEAT_INTERVAL,
  PeerPath,
  SESSION_ACTIVE_TIMEOUT,
  TRUST_UDP_ADDR_DURATION,
} from '../../src/tailnet/path.js';
import { FakeClock } from '../../src/wireguard/clock.js';

function rig() {
  const clock = new FakeClock();
  const pings: Array<{ to: AddrPort | 'derp'; txid: Uint8Array }> = [];
  let callMeMaybe = 0;
  const path = new PeerPath(clock, {
    sendDiscoPing: (to, txid) => pings.push({ to, txid }),
    sendCallMeMaybe: () => callMeMaybe++,
  });
  return { clock, pings, path, cmm: () => callMeMaybe };
}

const A: AddrPort = { ip: '192.0.2.1', port: 41641 };
const LO: AddrPort = { ip: '127.0.0.1', port: 41641 };

describe('PeerPath', () => {
  it('starts on DERP, pings every candidate and sends CallMeMaybe', () => {
    const r = rig();
    r.path.setEndpoints([A, LO]);
    expect(r.path.addrForSend()).toEqual({ udp: undefined, derp: true });
    expect(r.pings.map((p) => p.to)).toEqual([A, LO]);
    expect(r.cmm()).toBe(1);
    expect(r.path.current()).toEqual({ kind: 'derp' });
    // Within DISCO_PING_INTERVAL, sending again does not re-ping.
    r.path.addrForSend();
    expect(r.pings.length).toBe(2);
  });

  it('upgrades to the direct path when a pong returns, and sends only there while trusted', () => {
    const r = rig();
    r.path.setEndpoints([A]);
    r.path.addrForSend();
    r.clock.advance(12);
    expect(r.path.handlePong(r.pings[0]!.txid, A)).toBe(true);
    expect(r.path.current()).toEqual({ kind: 'direct', addr: A, latencyMs: 12 });
    expect(r.path.addrForSend()).toEqual({ udp: A, derp: false });
    expect(r.path.handlePong(new Uint8Array(12), A)).toBe(false);
  });

  it('keeps the path fresh with heartbeats, and falls back to DERP when pongs stop', () => {
    const r = rig();
    r.path.setEndpoints([A]);
    r.path.addrForSend();
    r.path.handlePong(r.pings[0]!.txid, A);
    // Heartbeat pings go to A every HEARTBEAT_INTERVAL while we keep sending; answer the first.
    r.clock.advance(HEARTBEAT_INTERVAL);
    r.path.addrForSend();
    const hb = r.pings.at(-1)!;
    expect(hb.to).toEqual(A);
    r.path.handlePong(hb.txid, A);
    expect(r.path.addrForSend()).toEqual({ udp: A, derp: false });
    // Now the peer goes quiet: after TRUST_UDP_ADDR_DURATION we send on both paths.
    r.clock.advance(TRUST_UDP_ADDR_DURATION + 1);
    expect(r.path.addrForSend()).toEqual({ udp: A, derp: true });
    expect(r.path.current()).toEqual({ kind: 'derp' });
  });

  it('stops heartbeats when the session goes idle', () => {
    const r = rig();
    r.path.setEndpoints([A]);
    r.path.addrForSend();
    r.path.handlePong(r.pings[0]!.txid, A);
    const before = r.pings.length;
    r.clock.advance(SESSION_ACTIVE_TIMEOUT + 4 * HEARTBEAT_INTERVAL);
    const during = r.pings.length;
    r.clock.advance(10 * HEARTBEAT_INTERVAL);
    expect(during).toBeGreaterThan(before);
    expect(r.pings.length).toBe(during);
  });

  it('pings CallMeMaybe endpoints at once, even if pinged recently', () => {
    const r = rig();
    r.path.setEndpoints([A]);
    r.path.addrForSend();
    r.path.handleCallMeMaybe([A, LO, { ip: 'fe80::1', port: 1 }]);
    expect(r.pings.map((p) => p.to)).toEqual([A, A, LO]);
  });

  it('ping() reports the path the first pong came back on, or undefined on timeout', async () => {
    const r = rig();
    r.path.setEndpoints([A]);
    const p = r.path.ping();
    r.clock.advance(30);
    const derpPing = r.pings.find((x) => x.to === 'derp')!;
    r.path.handlePong(derpPing.txid, 'derp');
    expect(await p).toEqual({ via: 'derp', latencyMs: 30 });
    const q = r.path.ping();
    r.clock.advance(6000);
    expect(await q).toBeUndefined();
  });

  it('a ping alone starts heartbeats, which send CallMeMaybe so a NAT can open from the peer side', () => {
    const r = rig();
    r.path.setEndpoints([A]);
    void r.path.ping();
    expect(r.cmm()).toBe(0);
    r.clock.advance(HEARTBEAT_INTERVAL);
    expect(r.cmm()).toBe(1);
    r.path.close();
  });

  it('prefers lower latency, loopback and private addresses (betterAddr)', () => {
    expect(betterAddr({ addr: LO, latency: 5 }, { addr: A, latency: 5 })).toBe(true);
    expect(betterAddr({ addr: A, latency: 1 }, { addr: { ip: '198.51.100.1', port: 1 }, latency: 20 })).toBe(
      true,
    );
    expect(betterAddr({ addr: A, latency: 20 }, { addr: { ip: '198.51.100.1', port: 1 }, latency: 1 })).toBe(
      false,
    );
  });

  it('leaves no timers after close', () => {
    const r = rig();
    r.path.setEndpoints([A]);
    r.path.addrForSend();
    r.path.close();
    expect(r.clock.pending).toBe(0);
  });
});
