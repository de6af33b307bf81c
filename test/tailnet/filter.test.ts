import { describe, expect, it } from 'vitest';
import { type FilterRule, FilterRuleError, PacketFilter } from '../../src/tailnet/filter.js';

const ME = '100.64.0.1';
const PEER = '100.64.0.2';
const OTHER = '100.64.0.3';

/** An IPv4 packet with a TCP/UDP/ICMP header stub; checksums are irrelevant to the filter. */
function v4(
  proto: number,
  src: string,
  dst: string,
  sport: number,
  dport: number,
  tcpFlags = 0x02,
): Uint8Array {
  const p = new Uint8Array(20 + 20);
  p[0] = 0x45;
  p[3] = p.length;
  p[8] = 64;
  p[9] = proto;
  p.set(src.split('.').map(Number), 12);
  p.set(dst.split('.').map(Number), 16);
  const h = 20;
  if (proto === 1) {
    p[h] = sport; // ICMP type in the first byte
  } else {
    p[h] = sport >> 8;
    p[h + 1] = sport & 0xff;
    p[h + 2] = dport >> 8;
    p[h + 3] = dport & 0xff;
    if (proto === 6) p[h + 13] = tcpFlags;
    if (proto === 17) p[h + 5] = 20;
  }
  // IPv4 header checksum (the IP parser checks it).
  let sum = 0;
  for (let i = 0; i < 20; i += 2) sum += (p[i]! << 8) | p[i + 1]!;
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >> 16);
  const c = ~sum & 0xffff;
  p[10] = c >> 8;
  p[11] = c & 0xff;
  return p;
}

const onlyPort8000: FilterRule[] = [
  { SrcIPs: [PEER], DstPorts: [{ IP: ME, Ports: { First: 8000, Last: 8000 } }] },
];

describe('PacketFilter', () => {
  it('allows a TCP SYN only to an allowed port from an allowed source', () => {
    const f = new PacketFilter(onlyPort8000, [ME]);
    expect(f.checkIn(v4(6, PEER, ME, 40000, 8000))).toBe('accept');
    expect(f.checkIn(v4(6, PEER, ME, 40000, 8001))).toBe('drop');
    expect(f.checkIn(v4(6, OTHER, ME, 40000, 8000))).toBe('drop');
    expect(f.stats).toMatchObject({ accepted: 1, dropped: 2, dropReasons: { 'no rule for tcp': 2 } });
  });

  it('lets non-SYN TCP through (replies to connections we opened)', () => {
    const f = new PacketFilter(onlyPort8000, [ME]);
    expect(f.checkIn(v4(6, OTHER, ME, 443, 50000, 0x12))).toBe('accept'); // SYN-ACK
    expect(f.checkIn(v4(6, OTHER, ME, 443, 50000, 0x10))).toBe('accept'); // ACK
  });

  it('lets UDP replies to our own flows through, and nothing else', () => {
    const f = new PacketFilter(onlyPort8000, [ME]);
    const reply = v4(17, OTHER, ME, 53, 41000);
    expect(f.checkIn(reply)).toBe('drop');
    f.noteOut(v4(17, ME, OTHER, 41000, 53));
    expect(f.checkIn(reply)).toBe('accept');
    expect(f.checkIn(v4(17, OTHER, ME, 54, 41000))).toBe('drop');
  });

  it('ICMP: echo replies pass; echo requests need some open port on the destination', () => {
    const deny = new PacketFilter([], [ME]);
    expect(deny.checkIn(v4(1, OTHER, ME, 0, 0))).toBe('accept');
    expect(deny.checkIn(v4(1, OTHER, ME, 8, 0))).toBe('drop');
    const f = new PacketFilter(onlyPort8000, [ME]);
    expect(f.checkIn(v4(1, PEER, ME, 8, 0))).toBe('accept');
    expect(f.checkIn(v4(1, OTHER, ME, 8, 0))).toBe('drop');
  });

  it('drops packets addressed to someone else even under allow-all', () => {
    const f = PacketFilter.allowAll([ME]);
    expect(f.checkIn(v4(6, PEER, OTHER, 1, 80))).toBe('drop');
    expect(f.stats.dropReasons['destination not ours']).toBe(1);
    expect(f.checkIn(v4(6, PEER, ME, 1, 80))).toBe('accept');
  });

  it('honours IPProto and CIDR sources', () => {
    const f = new PacketFilter(
      [
        {
          SrcIPs: ['100.64.0.0/24'],
          DstPorts: [{ IP: '*', Ports: { First: 0, Last: 65535 } }],
          IPProto: [17],
        },
      ],
      [ME],
    );
    expect(f.checkIn(v4(17, PEER, ME, 1, 9))).toBe('accept');
    expect(f.checkIn(v4(6, PEER, ME, 1, 9))).toBe('drop');
    expect(f.checkIn(v4(17, '100.64.1.9', ME, 1, 9))).toBe('drop');
  });

  it('rejects rules control should never send', () => {
    expect(() => new PacketFilter([{ SrcIPs: ['not-an-ip'], DstPorts: [] }], [ME])).toThrow(FilterRuleError);
  });

  it('counts malformed packets as drops', () => {
    const f = PacketFilter.allowAll([ME]);
    expect(f.checkIn(new Uint8Array([0x45, 0, 0]))).toBe('drop');
    expect(f.stats.dropReasons.malformed).toBe(1);
  });
});

describe('address ranges in rules (Headscale writes "FROM-TO")', () => {
  it('matches inside the range only', () => {
    const f = new PacketFilter(
      [
        {
          SrcIPs: ['100.64.0.1-100.64.0.6'],
          DstPorts: [{ IP: '100.64.0.9-100.64.0.9', Ports: { First: 80, Last: 80 } }],
        },
      ],
      ['100.64.0.9'],
    );
    for (const [src, want] of [
      ['100.64.0.0', 'drop'],
      ['100.64.0.1', 'accept'],
      ['100.64.0.4', 'accept'],
      ['100.64.0.6', 'accept'],
      ['100.64.0.7', 'drop'],
    ] as const) {
      expect(f.checkIn(v4(6, src, '100.64.0.9', 40000, 80))).toBe(want);
    }
  });
});

describe('PacketFilter on a subnet router', () => {
  const LAN_HOST = '192.168.1.20';
  const routed = { contains: (buf: Uint8Array, off: number, len: number) => len === 4 && buf[off] === 192 };
  const rules: FilterRule[] = [
    { SrcIPs: [PEER], DstPorts: [{ IP: '192.168.1.0/24', Ports: { First: 8080, Last: 8080 } }] },
  ];

  it('judges routed destinations by the rules, as its own; others are not ours', () => {
    const f = new PacketFilter(rules, [ME], undefined, routed);
    expect(f.checkIn(v4(6, PEER, LAN_HOST, 40000, 8080))).toBe('accept');
    expect(f.checkIn(v4(6, PEER, LAN_HOST, 40000, 8000))).toBe('drop');
    expect(f.checkIn(v4(6, PEER, '10.9.9.9', 40000, 8080))).toBe('drop');
    expect(f.stats.dropReasons).toEqual({ 'no rule for tcp': 1, 'destination not ours': 1 });
    // Without routes (not a router), the LAN is not ours at all.
    expect(new PacketFilter(rules, [ME]).checkIn(v4(6, PEER, LAN_HOST, 40000, 8080))).toBe('drop');
  });
});
