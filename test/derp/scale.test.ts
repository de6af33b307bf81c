// 500 concurrent clients on one server: each sends a packet to its neighbour in a ring and each receives
// exactly its neighbour's packet, checked by hash.
import { describe, expect, it } from 'vitest';
import type { DerpClient } from '../../src/derp/client.js';
import { connect, numbered, sha256, startServer } from './helpers.js';

const N = 500;

describe('scale', () => {
  it(`${N} concurrent clients each get their packet`, async () => {
    // All from one address at once: above the per-source login rate, which is not what this measures.
    const srv = await startServer({
      serverOptions: { maxClients: N + 10 },
      limits: { handshakesPerSecond: Number.POSITIVE_INFINITY },
    });
    const clients: DerpClient[] = [];
    try {
      for (let i = 0; i < N; i += 50) {
        clients.push(
          ...(await Promise.all(Array.from({ length: Math.min(50, N - i) }, () => connect(srv.url)))),
        );
      }
      expect(srv.derp.clientKeyCount).toBe(N);
      const packets = clients.map((_, i) => numbered(i, 200 + (i % 7) * 100));
      const got = new Map<number, string>();
      const done = new Promise<void>((resolve) => {
        clients.forEach((c, i) => {
          c.onPacket((src, data) => {
            const from = (i + N - 1) % N;
            if (Buffer.compare(src, clients[from]!.publicKey) === 0) got.set(i, sha256(data));
            if (got.size === N) resolve();
          });
        });
      });
      clients.forEach((c, i) => {
        c.send(clients[(i + 1) % N]!.publicKey, packets[i]!);
      });
      await done;
      for (let i = 0; i < N; i++) expect(got.get(i)).toBe(sha256(packets[(i + N - 1) % N]!));
      expect(srv.derp.metrics.packetsSent).toBe(N);
      expect(srv.derp.metrics.dropped).toBe(0);
    } finally {
      for (const c of clients) c.close();
      await srv.close();
    }
  });
});
