// Our DERP clients through a real derper: HTTP upgrade, TLS (pinned to derper's self-signed certificate) and
// WebSocket; packets checked end to end by length and hash; PeerGone when a peer leaves; reconnection after
// derper is killed and restarted.
import { afterEach, expect, it } from 'vitest';
import { DerpClient } from '../../src/derp/client.js';
import * as C from '../../src/derp/constants.js';
import type { DerpMap } from '../../src/derp/derpmap.js';
import { generateNodeKeyPair } from '../../src/derp/keys.js';
import { DerpClientManager } from '../../src/derp/manager.js';
import type { ServerMessage } from '../../src/derp/messages.js';
import { stunQuery } from '../../src/derp/stun.js';
import { collect, numbered, relayChecked } from '../derp/helpers.js';
import { DERPER, missingBinaries, startDerper } from './derp-rig.js';
import { Cleanup, waitFor } from './rig/exec.js';
import { skipUnless } from './rig/requirements.js';

const missing = missingBinaries([DERPER]);
let cleanup = new Cleanup();
afterEach(async () => {
  const errors = await cleanup.run();
  cleanup = new Cleanup();
  expect(errors.map((e) => e.message)).toEqual([]);
});

async function pair(url: string, extra: { websocket?: boolean; tls?: { certName?: string } } = {}) {
  const a = await DerpClient.connect({ url, privateKey: generateNodeKeyPair().privateKey, ...extra });
  cleanup.add('close a', () => a.close());
  const b = await DerpClient.connect({ url, privateKey: generateNodeKeyPair().privateKey, ...extra });
  cleanup.add('close b', () => b.close());
  return { a, b };
}

/** 60 packets of assorted sizes up to MaxPacketSize each way, checked by length and SHA-256. */
async function exchange(a: DerpClient, b: DerpClient): Promise<void> {
  const sizes = [4, 100, 1280, 1420, 9000, 65536];
  const packets = () => Array.from({ length: 60 }, (_, i) => numbered(i, sizes[i % sizes.length]!));
  await relayChecked(a, b, packets());
  await relayChecked(b, a, packets());
}

skipUnless(missing)('our DERP client through real derper', () => {
  it('HTTP upgrade: login, relay both ways, ping RTT', async () => {
    const d = await startDerper(cleanup);
    const { a, b } = await pair(d.url);
    expect(a.serverInfo.version).toBe(2);
    await exchange(a, b);
    const rtt = await a.ping();
    expect(rtt).toBeGreaterThan(0);
    expect(rtt).toBeLessThan(1000);
    a.notePreferred(true);
  });

  it('TLS with the certificate pinned by sha256-raw', async () => {
    const d = await startDerper(cleanup, { tls: true });
    const { a, b } = await pair(d.url, { tls: { certName: d.certName } });
    await exchange(a, b);
    await expect(
      DerpClient.connect({
        url: d.url,
        privateKey: generateNodeKeyPair().privateKey,
        tls: { certName: `sha256-raw:${'0'.repeat(64)}` },
      }),
    ).rejects.toMatchObject({ code: 'CONNECT' });
  });

  it('WebSocket (subprotocol derp), plain and over TLS', async () => {
    const d = await startDerper(cleanup);
    const { a, b } = await pair(d.url, { websocket: true });
    await exchange(a, b);
    const t = await startDerper(cleanup, { tls: true });
    const p = await pair(t.url, { websocket: true, tls: { certName: t.certName } });
    await exchange(p.a, p.b);
  });

  it('mesh key: WatchConns gets 51-byte PeerPresent, ForwardPacket delivers, ClosePeer closes', async () => {
    const meshKey = '5e'.repeat(32);
    const d = await startDerper(cleanup, { meshKey });
    const { a, b } = await pair(d.url);
    const mesh = await DerpClient.connect({
      url: d.url,
      privateKey: generateNodeKeyPair().privateKey,
      meshKey,
    });
    cleanup.add('close mesh', () => mesh.close());
    const seen: ServerMessage[] = [];
    mesh.onMessage((m) => (m.type === 'peerPresent' || m.type === 'peerGone') && seen.push(m));
    mesh.watchConnectionChanges();
    const present = (k: Uint8Array) =>
      seen.find((m) => m.type === 'peerPresent' && Buffer.compare(m.peer, k) === 0);
    await waitFor('PeerPresent flood', () =>
      present(a.publicKey) && present(b.publicKey) ? true : undefined,
    );
    expect(present(a.publicKey)).toMatchObject({ ip: '127.0.0.1', flags: C.PeerPresentIsRegular });
    const src = generateNodeKeyPair().publicKey;
    const got = collect(a, 1);
    mesh.forwardPacket(src, a.publicKey, Buffer.from('via mesh'));
    const [r] = await got;
    expect(Buffer.compare(r!.src, src)).toBe(0);
    expect(Buffer.from(r!.data).toString()).toBe('via mesh');
    const closed = new Promise<void>((resolve) => b.onClose(() => resolve()));
    mesh.closePeer(b.publicKey);
    await closed;
    await waitFor('PeerGone', () =>
      seen.some((m) => m.type === 'peerGone' && Buffer.compare(m.peer, b.publicKey) === 0) ? true : undefined,
    );
  });

  it('STUN: derper answers our Tailscale-style Binding request with our address', async () => {
    const d = await startDerper(cleanup);
    const r = await stunQuery('127.0.0.1', d.stunPort);
    expect(r.ip).toBe('127.0.0.1');
    expect(r.port).toBeGreaterThan(1023);
    expect(r.rttMs).toBeLessThan(1000);
  });

  it('PeerGone(disconnected) reaches a client that heard from the peer that left', async () => {
    const d = await startDerper(cleanup);
    const { a, b } = await pair(d.url);
    const got = collect(b, 1);
    a.send(b.publicKey, numbered(1, 64));
    await got;
    const gone = new Promise<ServerMessage>((resolve) =>
      b.onMessage((m) => m.type === 'peerGone' && resolve(m)),
    );
    a.close();
    const m = await gone;
    expect(m.type === 'peerGone' && Buffer.compare(m.peer, a.publicKey)).toBe(0);
    expect(m.type === 'peerGone' && m.reason).toBe(0);
  });

  it('reconnects after derper is killed and restarted, keeping the packet handlers', async () => {
    const d = await startDerper(cleanup);
    const map: DerpMap = {
      Regions: {
        '900': {
          RegionID: 900,
          RegionCode: 'test',
          RegionName: 'loopback derper',
          Nodes: [{ Name: '900a', RegionID: 900, HostName: '127.0.0.1', DERPPort: d.port }],
        },
      },
    };
    const mk = () => {
      const m = new DerpClientManager({
        privateKey: generateNodeKeyPair().privateKey,
        derpMap: map,
        useHttp: true,
        maxBackoffMs: 500,
      });
      cleanup.add('close manager', () => m.close());
      return m;
    };
    const a = mk();
    const b = mk();
    const keyOf = (m: DerpClientManager) =>
      (m as unknown as { opts: { privateKey: Uint8Array } }).opts.privateKey;
    const { nodePublicKey } = await import('../../src/derp/keys.js');
    const bKey = nodePublicKey(keyOf(b));
    const received: string[] = [];
    b.onPacket((region, _src, data) => received.push(`${region}:${Buffer.from(data).toString()}`));
    await a.setHome(900);
    await b.setHome(900);
    a.send(900, bKey, Buffer.from('before'));
    await waitFor('first packet', () => (received.length === 1 ? true : undefined));
    await d.proc.stop();
    await waitFor('both notice', () => (!a.isConnected(900) && !b.isConnected(900) ? true : undefined), 5000);
    await d.restart();
    await waitFor(
      'both reconnect',
      () => (a.connectCount(900) === 2 && b.connectCount(900) === 2 ? true : undefined),
      10_000,
    );
    a.send(900, bKey, Buffer.from('after'));
    await waitFor('second packet', () => (received.length === 2 ? true : undefined));
    expect(received).toEqual(['900:before', '900:after']);
  });
});
