// The stack over a link with the optional PacketLink features: bursts, transmit checksum offload
// (the link completes checksums) and receive checksum offload (the link gives each packet's sum).
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { completeChecksum, sumBytes } from '../../src/netstack/checksum.js';
import { type MemoryLink, memoryLinkPair, type PacketLink } from '../../src/netstack/link.js';
import type { IpPacket } from '../../src/netstack/packet.js';
import { Stack } from '../../src/netstack/stack.js';
import { TcpEndpoint } from '../../src/netstack/tcp/endpoint.js';
import { TcpServer } from '../../src/netstack/tcp/server.js';
import { tcpConnect } from '../../src/netstack/tcp/socket.js';

/** A MemoryLink that offloads checksums both ways and counts what the stack asked of it. */
class OffloadLink implements PacketLink {
  readonly txChecksumOffload = true;
  offloaded = 0;
  bursts = 0;
  private depth = 0;
  private held: Uint8Array[] = [];
  /** Reports a wrong sum for this many of the next packets it receives (a lying NIC). */
  lies = 0;
  private burstEnd: () => void = () => {};

  constructor(private readonly inner: MemoryLink) {}

  get mtu(): number {
    return this.inner.mtu;
  }

  writePacket(ip: Uint8Array, csumStart?: number, csumField?: number): void {
    const copy = ip.slice();
    if (csumStart !== undefined && csumField !== undefined) {
      this.offloaded++;
      completeChecksum(copy, csumStart, csumField);
    }
    if (this.depth > 0) this.held.push(copy);
    else this.inner.writePacket(copy);
  }

  onPacket(handler: (ip: Uint8Array, parsed?: IpPacket, linkSum?: number) => void): void {
    this.inner.onPacket((ip) => {
      const skew = this.lies > 0 ? 1 : 0;
      if (skew) this.lies--;
      handler(ip, undefined, (sumBytes(ip, 0, ip.length) + skew) % 0xffff || 0xffff);
      this.burstEnd();
    });
  }

  beginBurst(): void {
    this.depth++;
  }

  endBurst(): void {
    if (--this.depth > 0) return;
    this.bursts++;
    const held = this.held;
    this.held = [];
    for (const p of held) this.inner.writePacket(p);
  }

  onBurstEnd(handler: () => void): void {
    this.burstEnd = handler;
  }
}

function offloadPair() {
  const [la, lb] = memoryLinkPair(1420);
  const oa = new OffloadLink(la);
  const ob = new OffloadLink(lb);
  const sa = new Stack(oa, { addresses: ['10.0.0.1/24', 'fd00::1/64'] });
  const sb = new Stack(ob, { addresses: ['10.0.0.2/24', 'fd00::2/64'] });
  return { oa, ob, sa, sb, a: new TcpEndpoint(sa), b: new TcpEndpoint(sb) };
}

/** Sends `data` from a to b:80 and resolves with the sha256 of what b received. */
function transfer(a: TcpEndpoint, b: TcpEndpoint, host: string, data: Buffer): Promise<string> {
  return new Promise((resolve, reject) => {
    const server = new TcpServer(b, {}, (s) => {
      const h = createHash('sha256');
      s.on('data', (d: Buffer) => h.update(d));
      s.on('end', () => {
        server.close();
        resolve(h.digest('hex'));
      });
    }).listen(80);
    const c = tcpConnect(a, { host, port: 80 });
    c.on('error', reject);
    c.end(data);
  });
}

describe('stack over an offloading link', () => {
  it.each(['10.0.0.2', 'fd00::2'])('moves 300 KB intact to %s with offloaded checksums', async (host) => {
    const p = offloadPair();
    const data = Buffer.from(Array.from({ length: 300_000 }, (_, i) => (i * 7) & 0xff));
    const digest = await transfer(p.a, p.b, host, data);
    expect(digest).toBe(createHash('sha256').update(data).digest('hex'));
    expect(p.oa.offloaded).toBeGreaterThan(200);
    expect(p.ob.offloaded).toBeGreaterThan(0);
    expect(p.a.stats.badChecksum + p.b.stats.badChecksum).toBe(0);
    // Segments leave in bursts (one per flush), not one burst per segment.
    expect(p.oa.bursts).toBeLessThan(p.oa.offloaded);
  });

  it("trusts the link's sum: a wrong one drops the segment, and TCP recovers", async () => {
    const p = offloadPair();
    p.ob.lies = 1; // the SYN: dropped, then retransmitted
    const data = Buffer.alloc(50_000, 0x61);
    const digest = await transfer(p.a, p.b, '10.0.0.2', data);
    expect(digest).toBe(createHash('sha256').update(data).digest('hex'));
    expect(p.b.stats.badChecksum).toBe(1);
  });

  it('completes offloaded checksums itself for packets to its own address', async () => {
    const p = offloadPair();
    const data = Buffer.alloc(20_000, 0x5a);
    const digest = await transfer(p.a, p.a, '10.0.0.1', data);
    expect(digest).toBe(createHash('sha256').update(data).digest('hex'));
    expect(p.a.stats.badChecksum).toBe(0);
    expect(p.sa.stats.loopback).toBeGreaterThan(0);
  });
});
