import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  decodeMapRequest,
  decodeMapResponse,
  decodeRegisterRequest,
  decodeRegisterResponse,
} from '../../src/control/decode.js';
import { ProtocolError } from '../../src/control/errors.js';
import { PrivateKey } from '../../src/control/keys.js';
import { encodeMapMessage, MapMessageReader, messageText } from '../../src/control/mapstream.js';
import { applyMapResponse } from '../../src/control/netmap.js';
import { NoiseConn } from '../../src/control/noise/conn.js';
import { EarlyPayloadParser, encodeEarlyPayload } from '../../src/control/noise/early.js';
import { encodeFrame, FrameReader, MSG_RECORD } from '../../src/control/noise/frames.js';
import { clientInitiation, serverAccept } from '../../src/control/noise/handshake.js';
import { isZstdFrame, zstdStore, zstdUnstore } from '../../src/control/zstd.js';
import { assertFuzz, fuzzRuns } from '../fuzz.js';
import { duplexPair } from './helpers.js';

/** Splits bytes at random cut points. */
const chunked = (data: Buffer) =>
  fc.array(fc.nat(data.length), { maxLength: 8 }).map((cuts) => {
    const points = [...new Set([0, ...cuts, data.length])].sort((a, b) => a - b);
    return points.slice(1).map((p, i) => data.subarray(points[i], p));
  });

const SAMPLE_MAP = JSON.stringify({
  Node: {
    ID: 1,
    StableID: 's',
    Name: 'a.t.',
    User: 1,
    Key: `nodekey:${'1'.repeat(64)}`,
    Addresses: ['100.64.0.1/32'],
  },
  Peers: [{ ID: 2, Key: `nodekey:${'2'.repeat(64)}`, Addresses: ['100.64.0.2/32'], Online: true }],
  PeersChangedPatch: [{ NodeID: 2, Endpoints: ['1.2.3.4:5'] }],
  OnlineChange: { '2': false },
  DERPMap: {
    Regions: {
      '1': {
        RegionID: 1,
        RegionCode: 'x',
        RegionName: 'X',
        Nodes: [{ Name: '1a', RegionID: 1, HostName: 'h' }],
      },
    },
  },
  PacketFilter: [{ SrcIPs: ['*'], DstPorts: [{ IP: '*', Ports: { First: 0, Last: 65535 } }] }],
  PacketFilters: { base: null },
  DNSConfig: { Domains: ['t'] },
});

/** A decoder may refuse input only with ProtocolError. */
function onlyProtocolErrors(fn: () => unknown): void {
  try {
    fn();
  } catch (err) {
    if (!(err instanceof ProtocolError)) throw err;
  }
}

describe('fuzz: Noise framing', () => {
  it('FrameReader yields the same frames however the stream is cut', () => {
    assertFuzz(
      fc.property(fc.array(fc.uint8Array({ maxLength: 300 }), { maxLength: 6 }), (bodies) => {
        const wire = Buffer.concat(bodies.map((b) => encodeFrame(MSG_RECORD, b)));
        return fc.assert(
          fc.property(chunked(wire), (chunks) => {
            const r = new FrameReader();
            const frames = chunks.flatMap((c) => r.push(c));
            expect(frames.map((f) => Buffer.from(f.body).toString('hex'))).toEqual(
              bodies.map((b) => Buffer.from(b).toString('hex')),
            );
            expect(r.buffered).toBe(0);
          }),
          { numRuns: 5 },
        );
      }),
      { numRuns: fuzzRuns(60, 0.05) },
    );
  });

  it('FrameReader on random bytes either frames them or refuses an oversized frame', () => {
    assertFuzz(
      fc.property(fc.uint8Array({ maxLength: 5000 }), (bytes) => {
        try {
          new FrameReader().push(Buffer.from(bytes));
        } catch (err) {
          expect(err).toBeInstanceOf(RangeError);
        }
      }),
      { numRuns: fuzzRuns(100) },
    );
  });

  it('a NoiseConn fed mutated records fails with ProtocolError and delivers nothing forged', async () => {
    const machine = PrivateKey.generate('machine');
    const control = PrivateKey.generate('machine');
    await assertFuzz(
      fc.asyncProperty(fc.nat(200), fc.integer({ min: 1, max: 255 }), async (pos, flip) => {
        const hs = clientInitiation(machine, control.publicKey, 130);
        const srv = serverAccept(control, hs.initiation);
        const keys = hs.finish(srv.response);
        const [a, b] = duplexPair();
        const [c, d] = duplexPair();
        // Seal a record with a real sender, then corrupt one byte of it on the way.
        const sender = new NoiseConn(c, srv.keys);
        const sealed = await new Promise<Buffer>((resolve) => {
          d.once('data', resolve);
          sender.write(Buffer.alloc(64, 0x61));
        });
        const bad = Buffer.from(sealed);
        const i = pos % bad.length;
        bad[i] = bad[i]! ^ flip;
        const receiver = new NoiseConn(a, keys);
        const got: Buffer[] = [];
        receiver.on('data', (x: Buffer) => got.push(x));
        const outcome = new Promise<unknown>((resolve) => {
          receiver.once('error', resolve);
          setTimeout(() => resolve('no error'), 50);
        });
        b.write(bad);
        const err = await outcome;
        sender.destroy();
        receiver.destroy();
        if (i >= 3 || bad.readUInt16BE(1) === sealed.readUInt16BE(1)) {
          expect(err).toBeInstanceOf(ProtocolError);
        }
        expect(got.length).toBe(0);
      }),
      { numRuns: fuzzRuns(40, 0.02) },
    );
  });

  it('the handshake refuses random initiations and responses with ProtocolError only', () => {
    const control = PrivateKey.generate('machine');
    const hs = clientInitiation(PrivateKey.generate('machine'), control.publicKey, 130);
    const good = serverAccept(control, hs.initiation).response;
    assertFuzz(
      fc.property(
        fc.uint8Array({ minLength: 0, maxLength: 120 }),
        fc.nat(50),
        fc.integer({ min: 1, max: 255 }),
        (junk, pos, flip) => {
          onlyProtocolErrors(() => serverAccept(control, junk));
          const mutated = Buffer.from(good);
          mutated[pos] = mutated[pos]! ^ flip;
          const fresh = clientInitiation(PrivateKey.generate('machine'), control.publicKey, 130);
          serverAccept(control, fresh.initiation);
          expect(() => fresh.finish(mutated)).toThrow(ProtocolError);
        },
      ),
      { numRuns: fuzzRuns(100) },
    );
  });

  it('the early-payload parser is indifferent to chunking and only throws ProtocolError', () => {
    const early = Buffer.concat([
      encodeEarlyPayload({ nodeKeyChallenge: 'chalpub:00' }),
      Buffer.from('h2 frames'),
    ]);
    assertFuzz(
      fc.property(chunked(early), (chunks) => {
        const p = new EarlyPayloadParser();
        const out = Buffer.concat(chunks.map((c) => p.push(c)));
        expect(out.toString()).toBe('h2 frames');
        expect(p.payload).toEqual({ nodeKeyChallenge: 'chalpub:00' });
      }),
      { numRuns: fuzzRuns(100) },
    );
    assertFuzz(
      fc.property(fc.uint8Array({ maxLength: 64 }), (bytes) => {
        const withMagic = Buffer.concat([Buffer.from([0xff, 0xff, 0xff, 0x54, 0x53]), Buffer.from(bytes)]);
        onlyProtocolErrors(() => new EarlyPayloadParser().push(withMagic));
      }),
      { numRuns: fuzzRuns(100) },
    );
  });
});

describe('fuzz: control-message decoders', () => {
  it('decode arbitrary JSON values with ProtocolError or success, never anything else', () => {
    assertFuzz(
      fc.property(fc.jsonValue(), (v) => {
        const text = JSON.stringify(v);
        for (const decode of [
          decodeMapResponse,
          decodeRegisterResponse,
          decodeRegisterRequest,
          decodeMapRequest,
        ]) {
          onlyProtocolErrors(() => decode(text));
        }
      }),
      { numRuns: fuzzRuns(300) },
    );
  });

  it('decode random text with ProtocolError or success', () => {
    assertFuzz(
      fc.property(fc.string({ maxLength: 200 }), (text) => {
        onlyProtocolErrors(() => decodeMapResponse(text));
        onlyProtocolErrors(() => decodeRegisterResponse(text));
      }),
      { numRuns: fuzzRuns(100) },
    );
  });

  it('mutated valid map responses either decode (and fold into a netmap) or fail with ProtocolError', () => {
    const base = JSON.parse(SAMPLE_MAP) as Record<string, unknown>;
    const paths = [
      'Node',
      'Peers',
      'PeersChangedPatch',
      'OnlineChange',
      'DERPMap',
      'PacketFilter',
      'DNSConfig',
    ];
    assertFuzz(
      fc.property(
        fc.constantFrom(...paths),
        fc.jsonValue(),
        fc.string({ maxLength: 40 }),
        (field, value, junk) => {
          const mutated = { ...base, [field]: value };
          onlyProtocolErrors(() => {
            const resp = decodeMapResponse(JSON.stringify(mutated));
            applyMapResponse(undefined, resp);
          });
          const text = JSON.stringify(mutated);
          const cut = junk.length % (text.length + 1);
          onlyProtocolErrors(() => decodeMapResponse(text.slice(0, cut) + junk));
        },
      ),
      { numRuns: fuzzRuns(300) },
    );
  });

  it('the map-stream reader reassembles messages however they are cut, JSON or stored zstd', () => {
    assertFuzz(
      fc.property(
        fc.array(fc.json({ maxDepth: 2 }), { minLength: 1, maxLength: 5 }),
        fc.boolean(),
        (msgs, zstd) => {
          const wire = Buffer.concat(msgs.map((m) => encodeMapMessage(m, zstd)));
          fc.assert(
            fc.property(chunked(wire), (chunks) => {
              const r = new MapMessageReader();
              const out = chunks.flatMap((c) => r.push(c)).map(messageText);
              expect(out).toEqual(msgs);
            }),
            { numRuns: 5 },
          );
        },
      ),
      { numRuns: fuzzRuns(50, 0.05) },
    );
  });

  it('zstd stored frames round-trip, and random or truncated frames fail only with ProtocolError', () => {
    assertFuzz(
      fc.property(fc.uint8Array({ maxLength: 300_000 }), (data) => {
        const frame = zstdStore(data);
        expect(isZstdFrame(frame)).toBe(true);
        expect(Buffer.from(zstdUnstore(frame)).equals(Buffer.from(data))).toBe(true);
        onlyProtocolErrors(() => zstdUnstore(frame.subarray(0, Math.max(4, frame.length - 1))));
      }),
      { numRuns: fuzzRuns(30, 0.01) },
    );
    assertFuzz(
      fc.property(fc.uint8Array({ maxLength: 100 }), (tail) => {
        onlyProtocolErrors(() =>
          zstdUnstore(Buffer.concat([Buffer.from([0x28, 0xb5, 0x2f, 0xfd]), Buffer.from(tail)])),
        );
      }),
      { numRuns: fuzzRuns(100) },
    );
  });
});
