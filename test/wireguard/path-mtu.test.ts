// A device with a larger maxMtu than its base MTU sends packets above the base only to peers the
// bind has proved a larger path to (Bind.mtuTo, tailnet path MTU discovery), and pads packets
// within the base never beyond it.
import { describe, expect, it } from 'vitest';
import { randomBytes } from '../../src/wireguard/crypto.js';
import { devicePair, ipv4, settle } from './helpers.js';

describe('Device per-peer MTU', () => {
  it('drops packets above the base MTU toward a peer the bind says nothing about', async () => {
    const p = devicePair({ device: { maxMtu: 9000 } });
    expect(p.a.mtu).toBe(9000);
    expect(p.a.mtuTo(new Uint8Array([10, 0, 0, 2]))).toBe(1420);
    p.a.writePacket(ipv4('10.0.0.1', '10.0.0.2', randomBytes(100)));
    await settle();
    p.bindA.sent = [];
    const big = ipv4('10.0.0.1', '10.0.0.2', randomBytes(4000));
    p.a.writePacket(big);
    await settle();
    expect(p.a.stats.tooBig).toBe(1);
    expect(p.bindA.sent).toEqual([]);
    // A packet within the base MTU but not a multiple of 16 is padded to 1,420 at most (1,452 on the wire).
    p.a.writePacket(ipv4('10.0.0.1', '10.0.0.2', randomBytes(1419 - 20)));
    await settle();
    expect(p.bindA.sent.map((s) => s.datagram.length)).toEqual([1420 + 32]);
    await p.close();
  });

  it('sends up to the MTU the bind proved toward that peer, and follows its epoch', async () => {
    const p = devicePair({ device: { maxMtu: 9000 } });
    const state = { mtu: 8928 as number | undefined, epoch: 1 };
    Object.assign(p.bindA, { mtuTo: () => state.mtu });
    Object.defineProperty(p.bindA, 'mtuEpoch', { get: () => state.epoch });
    p.a.writePacket(ipv4('10.0.0.1', '10.0.0.2', randomBytes(100)));
    await settle();
    p.bindA.sent = [];
    expect(p.a.mtuTo(new Uint8Array([10, 0, 0, 2]))).toBe(8928);
    expect(p.a.mtuTo(new Uint8Array([10, 9, 9, 9]))).toBe(1420); // no peer: the base
    expect(p.a.mtuEpoch).toBe(1);
    const big = ipv4('10.0.0.1', '10.0.0.2', randomBytes(8928 - 20));
    p.a.writePacket(big);
    await settle();
    expect(p.received.b.at(-1)).toEqual(big);
    expect(p.bindA.sent!.at(-1)!.datagram.length).toBe(8928 + 32);
    state.mtu = undefined; // fell back
    state.epoch++;
    p.a.writePacket(big);
    await settle();
    expect(p.a.stats.tooBig).toBe(1);
    await p.close();
  });
});
