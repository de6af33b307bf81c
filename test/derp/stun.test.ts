// STUN: Tailscale's request layout (SOFTWARE + FINGERPRINT), the XOR-MAPPED-ADDRESS answer for IPv4 and IPv6,
// our responder over UDP loopback, and the CRC-32 behind FINGERPRINT.
import { randomBytes } from 'node:crypto';
import { createSocket } from 'node:dgram';
import { networkInterfaces } from 'node:os';
import { describe, expect, it } from 'vitest';
import { zlib } from '../../src/derp/crc32.js';
import {
  isStun,
  parseBindingRequest,
  parseStunResponse,
  StunServer,
  stunQuery,
  stunRequest,
  stunResponse,
} from '../../src/derp/stun.js';

const HAVE_V6_LOOPBACK = Object.values(networkInterfaces()).some((l) =>
  l?.some((a) => a.family === 'IPv6' && a.address === '::1'),
);

describe('STUN codec', () => {
  it('CRC-32 check value', () => {
    expect(zlib(Buffer.from('123456789'))).toBe(0xcbf43926);
  });

  it('a request is 40 bytes: header, SOFTWARE "tailnode", FINGERPRINT (as stun.Request)', () => {
    const tx = randomBytes(12);
    const req = stunRequest(tx);
    expect(req.length).toBe(40);
    expect(req.readUInt16BE(2)).toBe(20);
    expect(req.subarray(24, 32).toString()).toBe('tailnode');
    expect(isStun(req)).toBe(true);
    expect(Buffer.compare(parseBindingRequest(req), tx)).toBe(0);
    const bad = Buffer.from(req);
    bad[30]! ^= 1;
    expect(() => parseBindingRequest(bad)).toThrow(expect.objectContaining({ code: 'BAD_STUN' }));
  });

  it('XOR-MAPPED-ADDRESS round-trips for IPv4 and IPv6', () => {
    const tx = randomBytes(12);
    const r4 = stunResponse(tx, '192.0.2.7', 41641);
    expect(r4.length).toBe(32);
    expect(parseStunResponse(r4)).toMatchObject({ ip: '192.0.2.7', port: 41641 });
    const r6 = stunResponse(tx, '2001:db8::1', 3478);
    expect(r6.length).toBe(44);
    expect(parseStunResponse(r6)).toMatchObject({ ip: '2001:db8:0:0:0:0:0:1', port: 3478 });
    // An IPv4 address mapped into IPv6 (family 2), as a dual-stack server such as Headscale's answers.
    const mapped = stunResponse(tx, '::ffff:c000:207', 41641);
    expect(mapped.length).toBe(44);
    expect(parseStunResponse(mapped)).toMatchObject({ ip: '192.0.2.7', port: 41641 });
    // RFC 5389 §15.2: the port is XORed with the cookie's top 16 bits.
    expect(r4.readUInt16BE(26)).toBe(41641 ^ 0x2112);
    expect(() => parseStunResponse(stunRequest(tx))).toThrow(expect.objectContaining({ code: 'BAD_STUN' }));
  });
});

describe('STUN responder', () => {
  it('answers our query with our own address and ignores junk', async () => {
    const srv = await StunServer.listen({ host: '127.0.0.1', port: 0 });
    try {
      const sock = createSocket('udp4');
      await new Promise<void>((r) => sock.bind(0, '127.0.0.1', () => r()));
      sock.send(Buffer.from('not stun at all, definitely not'), srv.port, '127.0.0.1');
      const r = await stunQuery('127.0.0.1', srv.port);
      expect(r.ip).toBe('127.0.0.1');
      expect(r.port).toBeGreaterThan(0);
      expect(r.rttMs).toBeLessThan(1000);
      sock.close();
      expect(srv.answered).toBe(1);
      expect(srv.malformed).toBe(1);
    } finally {
      srv.close();
    }
  });

  it('a query with no answer times out with a typed error', async () => {
    const srv = await StunServer.listen({ host: '127.0.0.1', port: 0 });
    const port = srv.port;
    srv.close();
    await expect(stunQuery('127.0.0.1', port, 200)).rejects.toMatchObject({
      code: expect.stringMatching(/TIMEOUT|CONNECT/),
    });
  });

  it.skipIf(!HAVE_V6_LOOPBACK)(
    'on 127.0.0.1 it answers on ::1 too, with the IPv6 mapped address; not when told otherwise',
    async () => {
      const srv = await StunServer.listen({ host: '127.0.0.1', port: 0 });
      try {
        expect(srv.addresses).toEqual([`127.0.0.1:${srv.port}`, `[::1]:${srv.port}`]);
        const r6 = await stunQuery('::1', srv.port);
        expect(r6.ip).toBe('0:0:0:0:0:0:0:1');
        expect((await stunQuery('127.0.0.1', srv.port)).ip).toBe('127.0.0.1');
        expect(srv.answered).toBe(2);
      } finally {
        srv.close();
      }
      const only4 = await StunServer.listen({ host: '127.0.0.1', port: 0, otherFamily: false });
      expect(only4.addresses).toEqual([`127.0.0.1:${only4.port}`]);
      await expect(stunQuery('::1', only4.port, 300)).rejects.toMatchObject({
        code: expect.stringMatching(/TIMEOUT|CONNECT/),
      });
      only4.close();
    },
  );
});
