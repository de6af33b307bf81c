import { describe, expect, it } from 'vitest';
import { NamedEndpoint } from '../../src/wireguard/bind.js';
import { FakeClock } from '../../src/wireguard/clock.js';
import { MESSAGE_COOKIE_REPLY, REKEY_TIMEOUT } from '../../src/wireguard/constants.js';
import { CookieChecker, CookieGenerator } from '../../src/wireguard/cookie.js';
import { generatePrivateKey, publicKeyFromPrivate } from '../../src/wireguard/keys.js';
import { createInitiation, peerIdentity } from '../../src/wireguard/noise.js';
import { devicePair, ipv4, settle } from './helpers.js';

function strangerInitiation(target: Uint8Array, clock: FakeClock): Uint8Array {
  const priv = generatePrivateKey();
  const self = { privateKey: priv, publicKey: publicKeyFromPrivate(priv) };
  const { message } = createInitiation(self, peerIdentity(self, target), 1, clock.wallNow());
  new CookieGenerator(target, clock).addMacs(message);
  return message;
}

describe('MAC1, MAC2 and cookies', () => {
  it('MAC1 verifies only under the receiver key and for the exact bytes', () => {
    const clock = new FakeClock();
    const target = publicKeyFromPrivate(generatePrivateKey());
    const msg = strangerInitiation(target, clock);
    expect(new CookieChecker(target, clock).checkMac1(msg)).toBe(true);
    expect(new CookieChecker(publicKeyFromPrivate(generatePrivateKey()), clock).checkMac1(msg)).toBe(false);
    msg[10]! ^= 1;
    expect(new CookieChecker(target, clock).checkMac1(msg)).toBe(false);
  });

  it('a cookie reply round trip yields a MAC2 that is valid only from the same source', () => {
    const clock = new FakeClock();
    const priv = generatePrivateKey();
    const pub = publicKeyFromPrivate(priv);
    const checker = new CookieChecker(pub, clock);
    const gen = new CookieGenerator(pub, clock);
    const msg = strangerInitiation(pub, clock);
    gen.addMacs(msg);
    const src = new TextEncoder().encode('udp4:192.0.2.1:1234');
    expect(checker.checkMac2(msg, src)).toBe(false);
    const reply = checker.createReply(msg, 4, src);
    expect(reply[0]).toBe(MESSAGE_COOKIE_REPLY);
    gen.consumeReply(reply);
    gen.addMacs(msg);
    expect(checker.checkMac2(msg, src)).toBe(true);
    expect(checker.checkMac2(msg, new TextEncoder().encode('udp4:192.0.2.2:1234'))).toBe(false);
    // A reply to an older message does not authenticate: its AAD is that message's MAC1.
    msg[4]! ^= 1;
    gen.addMacs(msg);
    expect(() => gen.consumeReply(reply)).toThrow(/authentication/);
  });

  it('under load, an initiation without MAC2 gets a cookie, and the retry with MAC2 completes', async () => {
    const p = devicePair();
    p.b.forceUnderLoad = true;
    p.bindB.sent = [];
    p.a.writePacket(ipv4('10.0.0.1', '10.0.0.2'));
    await settle();
    expect(p.bindB.sent.map((s) => s.datagram[0])).toEqual([MESSAGE_COOKIE_REPLY]);
    expect(p.b.stats.cookiesSent).toBe(1);
    expect(p.received.b).toEqual([]);
    p.clock.advance(REKEY_TIMEOUT + 400);
    await settle();
    expect(p.received.b.length).toBe(1);
    expect(p.b.stats.cookiesSent).toBe(1);
    await p.close();
  });

  it('a flood of initiations triggers cookies and does not disturb an established session', async () => {
    const p = devicePair();
    p.a.writePacket(ipv4('10.0.0.1', '10.0.0.2'));
    await settle();
    expect(p.received.b.length).toBe(1);
    const flood = Array.from({ length: 50 }, () => strangerInitiation(p.b.publicKey, p.clock));
    for (let i = 0; i < 2000; i++) {
      p.bindB.deliver(new NamedEndpoint(`attacker-${i}`), flood[i % flood.length]!);
      // Interleave real traffic: it must be decrypted at once, not queued behind the flood.
      if (i % 100 === 0) p.a.writePacket(ipv4('10.0.0.1', '10.0.0.2', new Uint8Array([i & 0xff])));
    }
    await settle(200);
    expect(p.received.b.length).toBe(21);
    expect(p.b.stats.cookiesSent).toBeGreaterThan(0);
    expect(p.b.stats.handshakeQueueDrops).toBeGreaterThan(0);
    // The session survived: traffic still flows both ways.
    p.b.writePacket(ipv4('10.0.0.2', '10.0.0.1'));
    await settle();
    expect(p.received.a.length).toBe(1);
    await p.close();
  });
});
