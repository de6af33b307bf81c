import fc from 'fast-check';
import nacl from 'tweetnacl';
import { describe, expect, it } from 'vitest';
import {
  type DiscoMessage,
  discoSender,
  discoShared,
  generateDiscoKey,
  looksLikeDisco,
  openDisco,
  parseMessage,
  sealDisco,
} from '../../src/tailnet/disco.js';

describe('disco', () => {
  const a = generateDiscoKey();
  const b = generateDiscoKey();
  const ab = discoShared(a, b.publicKey);
  const ba = discoShared(b, a.publicKey);
  const txid = new Uint8Array(12).fill(7);

  const messages: DiscoMessage[] = [
    { type: 'ping', txid, padding: 0 },
    { type: 'ping', txid, nodeKey: new Uint8Array(32).fill(3), padding: 100 },
    { type: 'pong', txid, src: { ip: '192.0.2.7', port: 41641 } },
    { type: 'pong', txid, src: { ip: 'fd7a:115c:a1e0::1', port: 1 } },
    {
      type: 'callMeMaybe',
      endpoints: [
        { ip: '127.0.0.1', port: 5 },
        { ip: '2001:db8::1', port: 65535 },
      ],
    },
  ];

  for (const m of messages) {
    it(`seals and opens a ${m.type}`, () => {
      const pkt = sealDisco(a, ab, m);
      expect(looksLikeDisco(pkt)).toBe(true);
      expect(Buffer.from(discoSender(pkt)).equals(Buffer.from(a.publicKey))).toBe(true);
      expect(openDisco(ba, pkt)).toEqual(m);
    });
  }

  it('lays a pong out as disco.go does: type, version 0, txid, v4-mapped IP, port BE', () => {
    const pkt = sealDisco(a, ab, { type: 'pong', txid, src: { ip: '10.1.2.3', port: 0x1234 } });
    const clear = nacl.box.open.after(pkt.subarray(62), pkt.subarray(38, 62), ba)!;
    expect(Array.from(clear)).toEqual([
      2,
      0,
      ...txid,
      0,
      0,
      0,
      0,
      0,
      0,
      0,
      0,
      0,
      0,
      0xff,
      0xff,
      10,
      1,
      2,
      3,
      0x12,
      0x34,
    ]);
  });

  it('rejects tampering and the wrong key, and ignores unknown types', () => {
    const pkt = sealDisco(a, ab, messages[0]!);
    pkt[pkt.length - 1]! ^= 1;
    expect(openDisco(ba, pkt)).toBeUndefined();
    const c = generateDiscoKey();
    expect(openDisco(discoShared(c, a.publicKey), sealDisco(a, ab, messages[0]!))).toBeUndefined();
    expect(parseMessage(new Uint8Array([0x05, 0, 1, 2]))).toBeUndefined();
  });

  it('never throws on hostile input', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), (p) => {
        parseMessage(p);
        openDisco(ba, p);
      }),
      { numRuns: 3000 },
    );
  });
});
