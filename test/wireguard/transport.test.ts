import { describe, expect, it } from 'vitest';
import { NamedEndpoint } from '../../src/wireguard/bind.js';
import { MESSAGE_TRANSPORT } from '../../src/wireguard/constants.js';
import { readCounter } from '../../src/wireguard/messages.js';
import { devicePair, ipv4, settle } from './helpers.js';

function referenceSum(b: Uint8Array): number {
  let s = 0;
  for (let i = 0; i < b.length; i += 2) s += (b[i]! << 8) | (i + 1 < b.length ? b[i + 1]! : 0);
  while (s > 0xffff) s = (s & 0xffff) + Math.floor(s / 0x10000);
  return s;
}

/** A device pair with a session, and B's deliveries recorded with their link sums. */
async function ready() {
  const p = devicePair();
  p.a.writePacket(ipv4('10.0.0.1', '10.0.0.2'));
  await settle();
  const got: Array<{ ip: Uint8Array; sum: number | undefined }> = [];
  let bursts = 0;
  p.b.onPacket((ip, _parsed, sum) => got.push({ ip: ip.slice(), sum }));
  p.b.onBurstEnd(() => bursts++);
  p.bindA.sent = [];
  return { p, got, bursts: () => bursts };
}

describe('transport path: bursts', () => {
  it('seals a burst at its end, in order, with consecutive counters', async () => {
    const { p, got } = await ready();
    p.a.beginBurst();
    for (let i = 0; i < 5; i++) p.a.writePacket(ipv4('10.0.0.1', '10.0.0.2', new Uint8Array([i, i, i])));
    expect(p.bindA.sent).toHaveLength(0);
    p.a.endBurst();
    const sent = p.bindA.sent!;
    expect(sent).toHaveLength(5);
    const counters = sent.map((s) => readCounter(s.datagram, 8));
    expect(counters).toEqual(counters.map((_, i) => counters[0]! + i));
    expect(sent.every((s) => s.datagram[0] === MESSAGE_TRANSPORT)).toBe(true);
    await settle();
    expect(got.map((g) => g.ip[20])).toEqual([0, 1, 2, 3, 4]);
    await p.close();
  });

  it('writes outside a burst at once, and nested bursts end with the outermost', async () => {
    const { p } = await ready();
    p.a.writePacket(ipv4('10.0.0.1', '10.0.0.2'));
    expect(p.bindA.sent).toHaveLength(1);
    p.a.beginBurst();
    p.a.beginBurst();
    p.a.writePacket(ipv4('10.0.0.1', '10.0.0.2'));
    p.a.endBurst();
    expect(p.bindA.sent).toHaveLength(1);
    p.a.endBurst();
    expect(p.bindA.sent).toHaveLength(2);
    await p.close();
  });

  it('opens what arrives in one turn as one burst, and says when it is over', async () => {
    const { p, got, bursts } = await ready();
    p.bindA.blackhole = true;
    for (let i = 0; i < 3; i++) p.a.writePacket(ipv4('10.0.0.1', '10.0.0.2', new Uint8Array([i])));
    const datagrams = p.bindA.sent!.map((s) => s.datagram);
    const before = bursts();
    // The middle one forged: its neighbours still arrive, and the forgery is counted.
    datagrams[1]![30] = datagrams[1]![30]! ^ 0x80;
    for (const d of datagrams) p.bindB.deliver(new NamedEndpoint('a'), d);
    expect(got).toHaveLength(0); // nothing before the end of the turn
    await settle(1);
    expect(got.map((g) => g.ip[20])).toEqual([0, 2]);
    expect(p.b.stats.decryptFailed).toBe(1);
    expect(bursts() - before).toBe(1);
    await p.close();
  });

  it('hands up the sum of each packet, or -1 when the padding is not zeros', async () => {
    const { p, got } = await ready();
    const packet = ipv4('10.0.0.1', '10.0.0.2', new Uint8Array([1, 2, 3, 4, 5]));
    p.a.writePacket(packet);
    await settle();
    expect(got[0]!.sum).toBe(referenceSum(packet));
    // Bytes after the IP packet inside the tunnel (a peer may pad as it likes): the sum is withheld.
    const padded = new Uint8Array(packet.length + 3);
    padded.set(packet);
    padded.set([9, 9, 9], packet.length);
    p.a.writePacket(padded);
    await settle();
    expect(Buffer.from(got[1]!.ip).equals(Buffer.from(packet))).toBe(true);
    expect(got[1]!.sum).toBe(-1);
    await p.close();
  });

  it('offloads the checksum of packets written with csumStart', async () => {
    const { p, got } = await ready();
    expect(p.a.txChecksumOffload).toBe(true);
    const packet = ipv4('10.0.0.1', '10.0.0.2', new Uint8Array(30).fill(7));
    // UDP-shaped: checksum field at 20 + 6, holding a pseudo-header sum of 0x1234.
    packet[26] = 0x12;
    packet[27] = 0x34;
    p.a.writePacket(packet, 20, 26);
    await settle();
    const out = got[0]!.ip;
    const check = referenceSum(out.subarray(20)) + 0x1234;
    expect(check % 0xffff).toBe(0);
    await p.close();
  });
});

describe('transport path: lifecycle', () => {
  it('ignores an endBurst without a beginBurst: later writes still go out at once', async () => {
    const { p, got } = await ready();
    p.a.endBurst();
    p.a.writePacket(ipv4('10.0.0.1', '10.0.0.2', new Uint8Array([7])));
    expect(p.bindA.sent).toHaveLength(1);
    p.a.beginBurst();
    p.a.writePacket(ipv4('10.0.0.1', '10.0.0.2', new Uint8Array([8])));
    expect(p.bindA.sent).toHaveLength(1);
    p.a.endBurst();
    expect(p.bindA.sent).toHaveLength(2);
    await settle();
    expect(got.map((g) => g.ip[20])).toEqual([7, 8]);
    await p.close();
  });

  it('a bind that throws loses that burst only: the next one is sealed afresh and arrives', async () => {
    const { p, got } = await ready();
    const send = p.bindA.send.bind(p.bindA);
    p.bindA.send = () => {
      throw new Error('socket gone');
    };
    p.a.beginBurst();
    for (let i = 0; i < 3; i++) p.a.writePacket(ipv4('10.0.0.1', '10.0.0.2', new Uint8Array([i])));
    expect(() => p.a.endBurst()).toThrow('socket gone');
    p.bindA.send = send;
    p.a.beginBurst();
    for (let i = 0; i < 2; i++) p.a.writePacket(ipv4('10.0.0.1', '10.0.0.2', new Uint8Array([10 + i])));
    p.a.endBurst();
    expect(p.bindA.sent).toHaveLength(2);
    await settle();
    // Counters moved on past the lost burst, and B's replay window accepts what follows it.
    expect(got.map((g) => g.ip[20])).toEqual([10, 11]);
    await p.close();
  });

  it('drops the rest of a burst when a handler closes the device', async () => {
    const { p } = await ready();
    let delivered = 0;
    p.b.onPacket(() => {
      delivered++;
      void p.b.close();
    });
    p.a.beginBurst();
    for (let i = 0; i < 4; i++) p.a.writePacket(ipv4('10.0.0.1', '10.0.0.2'));
    p.a.endBurst();
    await settle();
    expect(delivered).toBe(1);
    await p.a.close();
  });
});
