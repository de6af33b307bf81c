// The same scenarios against the real derper and against our server, asserting the same observable behaviour:
// duplicate-key handling (lastWriterIsActive), PeerGone(NotHere) for disco packets to unknown keys with
// derper's rate limit, unknown frame types skipped, and which malformed frames close the connection.
import { randomBytes } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { DerpClient } from '../../src/derp/client.js';
import * as C from '../../src/derp/constants.js';
import { encodeFrame } from '../../src/derp/frame.js';
import { DerpHttpServer } from '../../src/derp/http-server.js';
import { generateNodeKeyPair } from '../../src/derp/keys.js';
import type { ServerMessage } from '../../src/derp/messages.js';
import { collect, until } from '../derp/helpers.js';
import { RawConn } from '../derp/raw.js';
import { DERPER, missingBinaries, startDerper } from './derp-rig.js';
import { Cleanup } from './rig/exec.js';
import { skipUnless } from './rig/requirements.js';

const missing = missingBinaries([DERPER]);
let cleanup = new Cleanup();
afterEach(async () => {
  const errors = await cleanup.run();
  cleanup = new Cleanup();
  expect(errors.map((e) => e.message)).toEqual([]);
});

type Start = () => Promise<{ url: string; port: number }>;
const servers: Array<[string, Start]> = [
  ['derper', async () => startDerper(cleanup)],
  [
    'ours',
    async () => {
      const s = await DerpHttpServer.listen({ port: 0 });
      cleanup.add('close our server', () => s.close());
      return { url: s.url, port: s.port };
    },
  ],
];

async function client(url: string, privateKey = generateNodeKeyPair().privateKey): Promise<DerpClient> {
  const c = await DerpClient.connect({ url, privateKey });
  cleanup.add('close client', () => c.close());
  return c;
}

async function raw(port: number): Promise<RawConn> {
  const r = await RawConn.open(port);
  cleanup.add('close raw', () => r.destroy());
  return r;
}

const text = (d: Uint8Array) => Buffer.from(d).toString();

skipUnless(missing)('derper and our server behave alike', () => {
  for (const [name, start] of servers) {
    describe(name, () => {
      it('duplicate keys: newest active, a speaking older one takes over, PeerGone only when all are gone', async () => {
        const { url } = await start();
        const sender = await client(url);
        const key = generateNodeKeyPair().privateKey;
        const old = await client(url, key);
        const fresh = await client(url, key);
        const toFresh = collect(fresh, 1);
        sender.send(fresh.publicKey, Buffer.from('one'));
        expect(text((await toFresh)[0]!.data)).toBe('one');
        await old.ping();
        const toOld = collect(old, 1);
        sender.send(fresh.publicKey, Buffer.from('two'));
        expect(text((await toOld)[0]!.data)).toBe('two');
        const heard = collect(sender, 1);
        fresh.send(sender.publicKey, Buffer.from('hi'));
        await heard;
        const gone: ServerMessage[] = [];
        sender.onMessage((m) => m.type === 'peerGone' && gone.push(m));
        old.close();
        await new Promise((r) => setTimeout(r, 200));
        const again = collect(fresh, 1);
        sender.send(fresh.publicKey, Buffer.from('three'));
        expect(text((await again)[0]!.data)).toBe('three');
        expect(gone).toEqual([]);
        fresh.close();
        await until('PeerGone', () => (gone.length === 1 ? true : undefined));
        expect(gone[0]).toMatchObject({ reason: C.PeerGoneReasonDisconnected });
      });

      it('three connections for one key: traffic follows the last speaker, then the survivor', async () => {
        const { url } = await start();
        const sender = await client(url);
        const key = generateNodeKeyPair().privateKey;
        const [k1, k2, k3] = [await client(url, key), await client(url, key), await client(url, key)];
        const deliver = async (want: DerpClient, body: string): Promise<void> => {
          const got = collect(want, 1);
          sender.send(k1.publicKey, Buffer.from(body));
          expect(text((await got)[0]!.data)).toBe(body);
        };
        await deliver(k3, 'newest');
        await k1.ping();
        await deliver(k1, 'speaker');
        k3.close();
        await new Promise((r) => setTimeout(r, 200));
        await deliver(k1, 'still the speaker');
        k1.close();
        await new Promise((r) => setTimeout(r, 200));
        await deliver(k2, 'survivor');
      });

      it('disco packets to an unknown key get PeerGone(NotHere), at most 3 in a burst; others get none', async () => {
        const { url } = await start();
        const a = await client(url);
        const nobody = new Uint8Array(randomBytes(32));
        const gone: ServerMessage[] = [];
        a.onMessage((m) => m.type === 'peerGone' && gone.push(m));
        for (let i = 0; i < 3; i++) a.send(nobody, new Uint8Array(100));
        await a.ping();
        expect(gone).toEqual([]);
        for (let i = 0; i < 6; i++)
          a.send(nobody, Buffer.concat([Buffer.from(C.DiscoMagic), randomBytes(80)]));
        await a.ping();
        await new Promise((r) => setTimeout(r, 300));
        expect(gone).toHaveLength(3);
        expect(gone[0]).toMatchObject({ reason: C.PeerGoneReasonNotHere });
      });

      it('an unknown frame type is skipped and the connection lives on', async () => {
        const { port } = await start();
        const r = await raw(port);
        await r.login();
        await r.next(C.FrameServerInfo);
        r.write(encodeFrame(0x7e, new Uint8Array(64)));
        r.write(encodeFrame(C.FramePing, Buffer.from('12345678')));
        const pong = await r.next(C.FramePong);
        expect(pong.payload.toString()).toBe('12345678');
        expect(r.closed).toBe(false);
      });

      const closing: Array<[string, (r: RawConn, peer: Uint8Array) => Uint8Array, boolean]> = [
        [
          'a SendPacket over MaxPacketSize',
          (_r, peer) => encodeFrame(C.FrameSendPacket, peer, new Uint8Array(C.MaxPacketSize + 1)),
          true,
        ],
        ['a NotePreferred of 2 bytes', () => encodeFrame(C.FrameNotePreferred, new Uint8Array(2)), true],
        ['WatchConns without the mesh key', () => encodeFrame(C.FrameWatchConns), true],
        ['ClosePeer without the mesh key', (_r, peer) => encodeFrame(C.FrameClosePeer, peer), true],
        ['a 7-byte Ping', () => encodeFrame(C.FramePing, new Uint8Array(7)), true],
        [
          'a SendPacket before ClientInfo',
          (_r, peer) => encodeFrame(C.FrameSendPacket, peer, new Uint8Array(8)),
          false,
        ],
      ];
      for (const [what, frame, afterLogin] of closing) {
        it(`${what} closes the connection`, async () => {
          const { port, url } = await start();
          const other = await client(url);
          const r = await raw(port);
          if (afterLogin) {
            await r.login();
            await r.next(C.FrameServerInfo);
          }
          r.write(frame(r, other.publicKey));
          await r.waitClosed(5000);
          expect(await other.ping()).toBeGreaterThan(0);
        });
      }
    });
  }
});
