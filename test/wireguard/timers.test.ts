import { describe, expect, it } from 'vitest';
import type { MemoryBind } from '../../src/wireguard/bind.js';
import {
  KEEPALIVE_TIMEOUT,
  MESSAGE_INITIATION,
  MESSAGE_TRANSPORT,
  REJECT_AFTER_TIME,
  REKEY_AFTER_TIME,
  REKEY_ATTEMPT_TIME,
  REKEY_TIMEOUT,
} from '../../src/wireguard/constants.js';
import { devicePair, ipv4, settle } from './helpers.js';

const count = (bind: MemoryBind, type: number) => bind.sent!.filter((s) => s.datagram[0] === type).length;
const isKeepalive = (d: Uint8Array) => d[0] === MESSAGE_TRANSPORT && d.length === 32;

/** Advances the fake clock in steps, letting the handshake queue run between them. */
async function advance(p: ReturnType<typeof devicePair>, ms: number, step = 500): Promise<void> {
  for (let t = 0; t < ms; t += step) {
    p.clock.advance(Math.min(step, ms - t));
    await settle(3);
  }
}

describe('protocol timers (fake clock)', () => {
  it('the initiator rekeys on send after REKEY_AFTER_TIME', async () => {
    const p = devicePair();
    p.a.writePacket(ipv4('10.0.0.1', '10.0.0.2'));
    await settle();
    p.bindA.sent = [];
    await advance(p, REKEY_AFTER_TIME - 1000, 5000);
    p.a.writePacket(ipv4('10.0.0.1', '10.0.0.2'));
    await settle();
    expect(count(p.bindA, MESSAGE_INITIATION)).toBe(0);
    await advance(p, 2000);
    p.a.writePacket(ipv4('10.0.0.1', '10.0.0.2'));
    await settle();
    expect(count(p.bindA, MESSAGE_INITIATION)).toBe(1);
    // The new session carries traffic; B confirmed it and the old one became `previous`.
    p.a.writePacket(ipv4('10.0.0.1', '10.0.0.2', new Uint8Array([9])));
    await settle();
    expect(p.received.b.at(-1)![20]).toBe(9);
    expect(p.a.getPeer(p.b.publicKey)!.keypairs.previous).toBeDefined();
    await p.close();
  });

  it('retries every REKEY_TIMEOUT (+jitter) and gives up after REKEY_ATTEMPT_TIME', async () => {
    const p = devicePair();
    p.bindA.sent = [];
    p.bindA.blackhole = true;
    p.a.writePacket(ipv4('10.0.0.1', '10.0.0.2'));
    await advance(p, REKEY_ATTEMPT_TIME + 10 * REKEY_TIMEOUT, 1000);
    const sent = count(p.bindA, MESSAGE_INITIATION);
    // As wireguard-go's expiredRetransmitHandshake: the first attempt, then retries while
    // attempts <= MAX_TIMER_HANDSHAKES (18), i.e. 19 retries, then nothing more.
    expect(sent).toBe(20);
    const peer = p.a.getPeer(p.b.publicKey)!;
    expect(peer.stagedCount()).toBe(0);
    await p.close();
  });

  it('sends a keepalive KEEPALIVE_TIMEOUT after receiving data it did not answer', async () => {
    const p = devicePair();
    p.a.writePacket(ipv4('10.0.0.1', '10.0.0.2'));
    await settle();
    p.bindB.sent = [];
    await advance(p, KEEPALIVE_TIMEOUT - 500);
    expect(p.bindB.sent.filter((s) => isKeepalive(s.datagram)).length).toBe(0);
    await advance(p, 1000);
    expect(p.bindB.sent.filter((s) => isKeepalive(s.datagram)).length).toBe(1);
    await advance(p, 3 * KEEPALIVE_TIMEOUT);
    expect(p.bindB.sent.filter((s) => isKeepalive(s.datagram)).length).toBe(1);
    await p.close();
  });

  it('starts a new handshake when sent data gets no reply (KEEPALIVE_TIMEOUT + REKEY_TIMEOUT)', async () => {
    const p = devicePair();
    p.a.writePacket(ipv4('10.0.0.1', '10.0.0.2'));
    await settle();
    await advance(p, 1000);
    p.bindB.blackhole = true; // B goes silent: no keepalives, no replies
    p.bindA.sent = [];
    p.a.writePacket(ipv4('10.0.0.1', '10.0.0.2'));
    await advance(p, KEEPALIVE_TIMEOUT + REKEY_TIMEOUT - 1000);
    expect(count(p.bindA, MESSAGE_INITIATION)).toBe(0);
    await advance(p, 1500);
    expect(count(p.bindA, MESSAGE_INITIATION)).toBe(1);
    await p.close();
  });

  it('stops using a session after REJECT_AFTER_TIME and zeroes keys after 3×REJECT_AFTER_TIME', async () => {
    const p = devicePair();
    p.a.writePacket(ipv4('10.0.0.1', '10.0.0.2'));
    await settle();
    const peer = p.a.getPeer(p.b.publicKey)!;
    const kp = peer.keypairs.current!;
    p.bindA.blackhole = true;
    p.bindB.blackhole = true;
    await advance(p, REJECT_AFTER_TIME + 1000, 10_000);
    p.bindA.sent = [];
    p.a.writePacket(ipv4('10.0.0.1', '10.0.0.2'));
    expect(count(p.bindA, MESSAGE_TRANSPORT)).toBe(0);
    expect(peer.stagedCount()).toBe(1);
    await advance(p, 3 * REJECT_AFTER_TIME, 10_000);
    expect(peer.keypairs.all()).toEqual([]);
    expect(kp.send.raw.every((b) => b === 0)).toBe(true);
    expect(kp.receive.raw.every((b) => b === 0)).toBe(true);
    await p.close();
  });

  it('sends persistent keepalives at the configured interval while idle', async () => {
    const p = devicePair();
    p.a.writePacket(ipv4('10.0.0.1', '10.0.0.2'));
    await settle();
    p.a.getPeer(p.b.publicKey)!.persistentKeepalive = 25;
    p.a.writePacket(ipv4('10.0.0.1', '10.0.0.2'));
    await settle();
    p.bindA.sent = [];
    await advance(p, 100_000, 1000);
    const keepalives = p.bindA.sent.filter((s) => isKeepalive(s.datagram)).length;
    expect(keepalives).toBeGreaterThanOrEqual(3);
    expect(keepalives).toBeLessThanOrEqual(5);
    await p.close();
  });

  it('leaves no timer armed after close', async () => {
    const p = devicePair();
    p.a.writePacket(ipv4('10.0.0.1', '10.0.0.2'));
    await settle();
    await p.close();
    expect(p.clock.pending).toBe(0);
  });
});
