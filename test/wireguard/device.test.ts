import { describe, expect, it } from 'vitest';
import { NamedEndpoint } from '../../src/wireguard/bind.js';
import { MESSAGE_INITIATION, MESSAGE_RESPONSE, MESSAGE_TRANSPORT } from '../../src/wireguard/constants.js';
import { randomBytes } from '../../src/wireguard/crypto.js';
import { devicePair, ipv4, ipv6, settle } from './helpers.js';

const v6 = (last: number) => {
  const a = new Uint8Array(16);
  a[0] = 0xfd;
  a[15] = last;
  return a;
};

describe('Device', () => {
  for (const psk of [undefined, randomBytes(32)]) {
    it(`completes a handshake and carries packets both ways (${psk ? 'with' : 'without'} PSK)`, async () => {
      const p = devicePair({ psk });
      const handshakes: boolean[] = [];
      p.a.on('handshake', (e) => handshakes.push(e.initiator));
      const out = ipv4('10.0.0.1', '10.0.0.2', new Uint8Array([1, 2, 3, 4, 5]));
      p.a.writePacket(out);
      await settle();
      expect(p.received.b).toEqual([out]);
      expect(handshakes).toEqual([true]);
      // B learned A's endpoint from the handshake and can answer.
      const back = ipv4('10.0.0.2', '10.0.0.1', new Uint8Array(100).fill(7));
      p.b.writePacket(back);
      await settle();
      expect(p.received.a).toEqual([back]);
      const st = p.a.status().peers[0]!;
      expect(st.latestHandshake).toBeDefined();
      expect(st.rxBytes).toBeGreaterThan(0);
      expect(st.txBytes).toBeGreaterThan(0);
      await p.close();
    });
  }

  it('carries IPv6 packets', async () => {
    const p = devicePair();
    const out = ipv6(v6(1), v6(2), randomBytes(1200));
    p.a.writePacket(out);
    await settle();
    expect(p.received.b).toEqual([out]);
    await p.close();
  });

  it('a PSK mismatch never completes', async () => {
    const p = devicePair();
    // Re-add B's view of A with a different PSK.
    p.b.addPeer({ publicKey: p.a.publicKey, presharedKey: randomBytes(32) });
    p.b.removePeer(p.a.publicKey);
    p.b.addPeer({ publicKey: p.a.publicKey, presharedKey: randomBytes(32), allowedIPs: ['10.0.0.1/32'] });
    p.a.writePacket(ipv4('10.0.0.1', '10.0.0.2'));
    await settle();
    expect(p.received.b).toEqual([]);
    expect(p.a.status().peers[0]!.latestHandshake).toBeUndefined();
    expect(p.a.stats.handshakeErrors).toBe(1);
    await p.close();
  });

  it('drops inner packets whose source the peer may not use', async () => {
    const p = devicePair();
    p.a.writePacket(ipv4('10.0.0.1', '10.0.0.2'));
    await settle();
    p.a.writePacket(ipv4('10.0.0.99', '10.0.0.2'));
    await settle();
    expect(p.received.b.length).toBe(1);
    expect(p.b.stats.disallowedSource).toBe(1);
    await p.close();
  });

  it('drops packets with no route and counts them', async () => {
    const p = devicePair();
    p.a.writePacket(ipv4('10.0.0.1', '192.0.2.1'));
    expect(p.a.stats.noRoute).toBe(1);
    await p.close();
  });

  it('rejects a replayed transport packet and a replayed initiation', async () => {
    const p = devicePair();
    p.bindA.sent = [];
    p.a.writePacket(ipv4('10.0.0.1', '10.0.0.2'));
    await settle();
    const init = p.bindA.sent.find((s) => s.datagram[0] === MESSAGE_INITIATION)!;
    const data = p.bindA.sent.find((s) => s.datagram[0] === MESSAGE_TRANSPORT)!;
    p.bindB.deliver(p.bindA.endpoint, data.datagram);
    await settle();
    expect(p.received.b.length).toBe(1);
    expect(p.b.stats.replayed).toBe(1);
    p.clock.advance(1000);
    p.bindB.deliver(p.bindA.endpoint, init.datagram);
    await settle();
    expect(p.b.stats.staleInitiations).toBe(1);
    await p.close();
  });

  it('follows the peer to a new endpoint (roaming)', async () => {
    const p = devicePair();
    p.a.writePacket(ipv4('10.0.0.1', '10.0.0.2'));
    await settle();
    expect(p.b.status().peers[0]!.endpoint).toBe('a');
    // A's packets now arrive from another address: B must answer there.
    p.bindA.sent = [];
    p.bindA.blackhole = true;
    p.a.writePacket(ipv4('10.0.0.1', '10.0.0.2'));
    const moved = p.bindA.sent.pop()!;
    p.bindB.deliver(new NamedEndpoint('a2'), moved.datagram);
    await settle(1); // received datagrams are opened as a burst, at the end of the turn
    expect(p.b.status().peers[0]!.endpoint).toBe('a2');
    expect(p.received.b.length).toBe(2);
    await p.close();
  });

  it('with roaming off, keeps the endpoint it has', async () => {
    const p = devicePair({ bothEndpoints: true, device: { roaming: false } });
    p.a.writePacket(ipv4('10.0.0.1', '10.0.0.2'));
    await settle();
    p.bindA.sent = [];
    p.bindA.blackhole = true;
    p.a.writePacket(ipv4('10.0.0.1', '10.0.0.2'));
    p.bindB.deliver(new NamedEndpoint('a2'), p.bindA.sent.pop()!.datagram);
    await settle(1);
    expect(p.received.b.length).toBe(2);
    expect(p.b.status().peers[0]!.endpoint).toBe('a');
    await p.close();
  });

  it('sends responses with a response message and the initiator confirms with data', async () => {
    const p = devicePair();
    p.bindB.sent = [];
    p.a.writePacket(ipv4('10.0.0.1', '10.0.0.2'));
    await settle();
    expect(p.bindB.sent.map((s) => s.datagram[0])).toEqual([MESSAGE_RESPONSE]);
    await p.close();
  });
});
