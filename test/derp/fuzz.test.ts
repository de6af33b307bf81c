// Fuzzing the decoders with fast-check: random bytes, and valid frame streams with bytes flipped, cut or
// inserted. The only acceptable failure is a DerpError; and random garbage from one connection never disturbs
// the server.
import { randomBytes } from 'node:crypto';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DerpClient } from '../../src/derp/client.js';
import * as C from '../../src/derp/constants.js';
import { DerpError } from '../../src/derp/errors.js';
import { FrameReader } from '../../src/derp/frame.js';
import type { DerpHttpServer } from '../../src/derp/http-server.js';
import * as M from '../../src/derp/messages.js';
import { parseBindingRequest, parseStunResponse, stunRequest } from '../../src/derp/stun.js';
import { assertFuzz, fuzzRuns } from '../fuzz.js';
import { connect, numbered, relayChecked, startServer } from './helpers.js';
import { RawConn } from './raw.js';

/** Runs the client-side decode path over a byte stream cut into chunks; returns frames decoded. */
function decodeStream(bytes: Uint8Array, cuts: number[]): number {
  let n = 0;
  const r = new FrameReader((type, payload) => {
    M.decodeServerFrame(type, payload);
    if (type === C.FrameServerKey) M.decodeServerKey(payload);
    if (type === C.FrameClientInfo) M.decodeClientInfoFrame(payload);
    n++;
  }, C.MaxClientFrameLen);
  let off = 0;
  for (const c of [...cuts, bytes.length]) {
    const end = Math.min(bytes.length, Math.max(off, c));
    r.push(Buffer.from(bytes.subarray(off, end)));
    off = end;
  }
  return n;
}

function onlyDerpErrors(f: () => unknown): void {
  try {
    f();
  } catch (e) {
    if (!(e instanceof DerpError)) throw e;
  }
}

const validFrame = fc.oneof(
  fc.uint8Array({ minLength: 32, maxLength: 32 }).map((k) => M.encodeServerKey(k)),
  fc
    .tuple(fc.uint8Array({ minLength: 32, maxLength: 32 }), fc.uint8Array({ maxLength: 2000 }))
    .map(([k, d]) => M.encodeRecvPacket(k, d)),
  fc.uint8Array({ minLength: 8, maxLength: 8 }).map((d) => M.encodePing(d)),
  fc.uint8Array({ minLength: 32, maxLength: 32 }).map((k) => M.encodePeerGone(k, 1)),
  fc
    .uint8Array({ minLength: 32, maxLength: 32 })
    .map((k) => M.encodePeerPresent(k, new Uint8Array(16), 1, 1)),
  fc.string().map((s) => M.encodeHealth(s)),
  fc.tuple(fc.nat(), fc.nat()).map(([x, y]) => M.encodeRestarting(x % 2 ** 32, y % 2 ** 32)),
  fc.constant(M.encodeKeepAlive()),
);

describe('decoder fuzzing', () => {
  it('random bytes: frames or DerpErrors, nothing else', () => {
    assertFuzz(
      fc.property(
        fc.uint8Array({ maxLength: 4096 }),
        fc.array(fc.nat(4096), { maxLength: 8 }),
        (bytes, cuts) => {
          onlyDerpErrors(() =>
            decodeStream(
              bytes,
              cuts.sort((x, y) => x - y),
            ),
          );
        },
      ),
      { numRuns: fuzzRuns(2000) },
    );
  });

  it('valid streams decode whole under any chunking; mutated ones fail only with DerpError', () => {
    assertFuzz(
      fc.property(
        fc.array(validFrame, { minLength: 1, maxLength: 10 }),
        fc.array(fc.nat(30_000), { maxLength: 6 }),
        fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 4 }),
        (frames, cuts, flips) => {
          const stream = Buffer.concat(frames);
          expect(
            decodeStream(
              stream,
              [...cuts].sort((x, y) => x - y),
            ),
          ).toBe(frames.length);
          const mutated = Buffer.from(stream);
          for (const [at, v] of flips) mutated[at % mutated.length] = v;
          onlyDerpErrors(() => decodeStream(mutated.subarray(0, mutated.length - (flips.length % 3)), cuts));
        },
      ),
      { numRuns: fuzzRuns(1000) },
    );
  });

  it('JSON info and STUN parsers: DerpError or a value', () => {
    assertFuzz(
      fc.property(fc.uint8Array({ maxLength: 300 }), (b) => {
        onlyDerpErrors(() => M.parseClientInfo(b));
        onlyDerpErrors(() => M.parseServerInfo(b));
        onlyDerpErrors(() => parseBindingRequest(b));
        onlyDerpErrors(() => parseStunResponse(b));
      }),
      { numRuns: fuzzRuns(2000) },
    );
    assertFuzz(
      fc.property(fc.json(), (j) => {
        onlyDerpErrors(() => M.parseClientInfo(new TextEncoder().encode(j)));
      }),
      { numRuns: fuzzRuns(500) },
    );
    assertFuzz(
      fc.property(fc.nat(39), fc.integer({ min: 0, max: 255 }), (at, v) => {
        const req = stunRequest(randomBytes(12));
        req[at] = v;
        onlyDerpErrors(() => parseBindingRequest(req));
      }),
      { numRuns: fuzzRuns(500) },
    );
  });
});

describe('server fuzzing', () => {
  let srv: DerpHttpServer;
  let a: DerpClient;
  let b: DerpClient;
  beforeAll(async () => {
    // Each input logs in a connection of its own: far above the per-source login rate.
    srv = await startServer({ limits: { handshakesPerSecond: Number.POSITIVE_INFINITY } });
    a = await connect(srv.url);
    b = await connect(srv.url);
  });
  afterAll(async () => {
    a.close();
    b.close();
    await srv.close();
  });

  it('garbage after login, from many connections, never disturbs the healthy pair', async () => {
    await assertFuzz(
      fc.asyncProperty(
        fc.uint8Array({ minLength: 1, maxLength: 3000 }),
        fc.boolean(),
        async (garbage, login) => {
          const raw = await RawConn.open(srv.port);
          if (login) {
            await raw.login();
            await raw.next(C.FrameServerInfo);
          }
          raw.write(garbage);
          await new Promise((r) => setTimeout(r, 2));
          raw.destroy();
        },
      ),
      { numRuns: fuzzRuns(60, 0.02) },
    );
    await relayChecked(a, b, [numbered(1, 1400), numbered(2, 9000)]);
    expect(srv.derp.connectionCount).toBeGreaterThanOrEqual(2);
  });
});
