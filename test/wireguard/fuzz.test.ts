import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { NamedEndpoint } from '../../src/wireguard/bind.js';
import { FakeClock } from '../../src/wireguard/clock.js';
import { CookieGenerator } from '../../src/wireguard/cookie.js';
import { WireGuardError } from '../../src/wireguard/errors.js';
import { generatePrivateKey, publicKeyFromPrivate } from '../../src/wireguard/keys.js';
import { messageType } from '../../src/wireguard/messages.js';
import {
  consumeInitiation,
  consumeResponse,
  createInitiation,
  peerIdentity,
} from '../../src/wireguard/noise.js';
import { assertFuzz, fuzzRuns } from '../fuzz.js';
import { devicePair, ipv4, settle } from './helpers.js';

/** Runs `fn`; any exception other than WireGuardError fails the property. */
function onlyTypedErrors(fn: () => unknown): void {
  try {
    fn();
  } catch (e) {
    if (!(e instanceof WireGuardError)) throw e;
  }
}

/** Valid bytes with a few positions overwritten, truncated or extended. */
function mutated(base: Uint8Array) {
  return fc
    .tuple(
      fc.array(fc.tuple(fc.nat(base.length - 1), fc.integer({ min: 0, max: 255 })), { maxLength: 8 }),
      fc.integer({ min: -8, max: 8 }),
    )
    .map(([edits, resize]) => {
      const out = new Uint8Array(Math.max(0, base.length + resize));
      out.set(base.subarray(0, out.length));
      for (const [i, v] of edits) if (i < out.length) out[i] = v;
      return out;
    });
}

describe('parsers never crash on hostile input', () => {
  const clock = new FakeClock();
  const privA = generatePrivateKey();
  const privB = generatePrivateKey();
  const a = { privateKey: privA, publicKey: publicKeyFromPrivate(privA) };
  const b = { privateKey: privB, publicKey: publicKeyFromPrivate(privB) };
  const bAtA = peerIdentity(a, b.publicKey);
  const aAtB = peerIdentity(b, a.publicKey);
  const { message: init, pending } = createInitiation(a, bAtA, 7, clock.wallNow());
  const anyBytes = fc.uint8Array({ maxLength: 300 });

  it('messageType', () => {
    assertFuzz(
      fc.property(anyBytes, (d) => void messageType(d)),
      { numRuns: fuzzRuns(5000) },
    );
  });

  it('consumeInitiation', () => {
    assertFuzz(
      fc.property(fc.oneof(anyBytes, mutated(init)), (d) =>
        onlyTypedErrors(() => consumeInitiation(b, d, () => aAtB)),
      ),
      { numRuns: fuzzRuns(1500) },
    );
  });

  it('consumeResponse', () => {
    const resp = new Uint8Array(92);
    resp[0] = 2;
    assertFuzz(
      fc.property(fc.oneof(anyBytes, mutated(resp)), (d) =>
        onlyTypedErrors(() => consumeResponse(a, bAtA, pending, d)),
      ),
      { numRuns: fuzzRuns(1500) },
    );
  });

  it('cookie replies', () => {
    const gen = new CookieGenerator(b.publicKey, clock);
    gen.addMacs(init.slice());
    const reply = new Uint8Array(64);
    reply[0] = 3;
    assertFuzz(
      fc.property(fc.oneof(anyBytes, mutated(reply)), (d) => onlyTypedErrors(() => gen.consumeReply(d))),
      { numRuns: fuzzRuns(1500) },
    );
  });

  it('a live device fed random and mutated datagrams keeps working', async () => {
    const p = devicePair();
    p.bindA.sent = [];
    p.a.writePacket(ipv4('10.0.0.1', '10.0.0.2'));
    await settle();
    const samples = p.bindA.sent.map((s) => s.datagram);
    const from = new NamedEndpoint('fuzzer');
    assertFuzz(
      fc.property(fc.oneof(anyBytes, ...samples.map(mutated)), (d) => {
        p.bindB.deliver(from, d);
      }),
      { numRuns: fuzzRuns(3000) },
    );
    await settle(100);
    p.a.writePacket(ipv4('10.0.0.1', '10.0.0.2', new Uint8Array([42])));
    await settle();
    expect(p.received.b.at(-1)![20]).toBe(42);
    await p.close();
  });
});
