// The TSMP payloads byte for byte, as net/packet/tsmp.go lays them out (its Marshal and As* parsers).
import { describe, expect, it } from 'vitest';
import {
  buildTsmpPing,
  buildTsmpPong,
  buildTsmpReject,
  parseTsmp,
} from '../../../src/tailnet/tsmp/packet.js';

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');
const bytes = (h: string) => new Uint8Array(Buffer.from(h, 'hex'));

describe('TSMP payloads', () => {
  it("ping is 'p' and 8 data bytes; pong 'o', the same 8 bytes and a big-endian peerapi port", () => {
    const data = bytes('0102030405060708');
    expect(hex(buildTsmpPing(data))).toBe('700102030405060708');
    expect(hex(buildTsmpPong(data, 0x1234))).toBe('6f01020304050607081234');
    expect(parseTsmp(buildTsmpPing(data))).toEqual({ type: 'ping', data });
    expect(parseTsmp(buildTsmpPong(data, 41641))).toEqual({ type: 'pong', data, peerAPIPort: 41641 });
    // An old pong without the port (9 bytes): AsTSMPPong takes it, port 0.
    expect(parseTsmp(bytes('6f0102030405060708'))).toEqual({ type: 'pong', data, peerAPIPort: 0 });
  });

  it("rejection: '!', protocol, reason, source and destination ports; the flags byte only when set", () => {
    const r = buildTsmpReject({ protocol: 6, reason: 'acl', srcPort: 50000, dstPort: 22 });
    expect(hex(r)).toBe('210641c3500016');
    expect(parseTsmp(r)).toEqual({
      type: 'reject',
      protocol: 6,
      reason: 'acl',
      srcPort: 50000,
      dstPort: 22,
      maybeBroken: false,
    });
    const maybe = buildTsmpReject({
      protocol: 17,
      reason: 'host-firewall',
      srcPort: 1,
      dstPort: 2,
      maybeBroken: true,
    });
    expect(hex(maybe)).toBe('2111570001000201');
    expect(parseTsmp(maybe)).toMatchObject({ reason: 'host-firewall', maybeBroken: true });
    // Every reason byte tsmp.go names, and an unknown one kept as its byte.
    for (const [name, byte] of [
      ['shields', 'S'],
      ['host-ip-forwarding-unavailable', 'F'],
      ['app-connector-transit-ip-unknown', 'T'],
    ] as const) {
      const p = bytes(`2106${Buffer.from(byte).toString('hex')}00010002`);
      expect(parseTsmp(p)).toMatchObject({ reason: name });
    }
    expect(parseTsmp(bytes('2106ff00010002'))).toMatchObject({ reason: '0xff' });
  });

  it('too short for its type, or an unknown type: undefined (ignored, as tailscaled ignores it)', () => {
    expect(parseTsmp(bytes('7001020304050607'))).toBeUndefined(); // ping with 7 data bytes
    expect(parseTsmp(bytes('2106410001'))).toBeUndefined(); // 5 of 7 reject bytes
    expect(parseTsmp(bytes(`61${'00'.repeat(31)}`))).toBeUndefined(); // disco advertisement one short
    expect(parseTsmp(bytes(`61${'ab'.repeat(32)}`))).toMatchObject({ type: 'disco-advertisement' });
    expect(parseTsmp(bytes('7a00'))).toBeUndefined();
    expect(parseTsmp(new Uint8Array(0))).toBeUndefined();
  });
});
