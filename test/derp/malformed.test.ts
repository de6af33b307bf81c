// Bad input to the server closes only the offending connection, with a logged reason, while a pair of healthy
// clients keeps relaying; and a client refuses a server that greets it wrongly.
import { createServer, type Server } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DerpClient } from '../../src/derp/client.js';
import * as C from '../../src/derp/constants.js';
import { encodeFrame } from '../../src/derp/frame.js';
import type { DerpHttpServer } from '../../src/derp/http-server.js';
import { generateNodeKeyPair } from '../../src/derp/keys.js';
import { encodeClientInfo, encodeSendPacket } from '../../src/derp/messages.js';
import { connect, numbered, relayChecked, startServer } from './helpers.js';
import { RawConn } from './raw.js';

let srv: DerpHttpServer;
let strict: DerpHttpServer;
let a: DerpClient;
let b: DerpClient;
const logged: string[] = [];
const logger = { debug: () => {}, info: (m: string) => logged.push(m), warn: (m: string) => logged.push(m) };

beforeAll(async () => {
  srv = await startServer({ serverOptions: { logger } });
  strict = await startServer({ serverOptions: { logger, strictFrames: true } });
  a = await connect(srv.url);
  b = await connect(srv.url);
});
afterAll(async () => {
  a.close();
  b.close();
  await srv.close();
  await strict.close();
});

/** After each bad connection, the healthy pair still relays. */
async function healthy(): Promise<void> {
  await relayChecked(a, b, [numbered(1, 1000), numbered(2, 65536)]);
}

async function expectClosed(raw: RawConn, reason: RegExp): Promise<void> {
  await raw.waitClosed();
  expect(
    logged.some((l) => reason.test(l)),
    logged.join('\n'),
  ).toBe(true);
  await healthy();
}

describe('before login', () => {
  it('a first frame other than ClientInfo', async () => {
    const raw = await RawConn.open(srv.port);
    raw.write(encodeSendPacket(a.publicKey, new Uint8Array(10)));
    await expectClosed(raw, /got frame 0x04 \(SendPacket\), want 0x02 \(ClientInfo\)/);
  });

  it('a ClientInfo box that does not open', async () => {
    const raw = await RawConn.open(srv.port);
    await raw.next(C.FrameServerKey);
    raw.write(encodeClientInfo(raw.keys.publicKey, new Uint8Array(24 + 40)));
    await expectClosed(raw, /box does not open/);
  });

  it('a ClientInfo whose JSON is not an object, and a short ClientInfo', async () => {
    const { NaclBox } = await import('../../src/derp/keys.js');
    const raw = await RawConn.open(srv.port);
    const greet = await raw.next(C.FrameServerKey);
    const box = NaclBox.between(raw.keys.privateKey, greet.payload.subarray(8, 40));
    raw.write(encodeClientInfo(raw.keys.publicKey, box.seal(new TextEncoder().encode('"x"'))));
    await expectClosed(raw, /ClientInfo: not a JSON object/);
    const short = await RawConn.open(srv.port);
    short.write(encodeFrame(C.FrameClientInfo, new Uint8Array(40)));
    await expectClosed(short, /short ClientInfo frame/);
  });

  it('a ClientInfo larger than 256 KiB is refused at its header', async () => {
    const raw = await RawConn.open(srv.port);
    raw.write(Buffer.from([C.FrameClientInfo, 0, 0x04, 0, 1]));
    await expectClosed(raw, /exceeds the limit of 262144/);
  });

  it('a stream that ends inside a frame', async () => {
    const raw = await RawConn.open(srv.port);
    raw.write(Buffer.from([C.FrameClientInfo, 0, 0, 1, 0, 1, 2, 3]));
    raw.socket.end();
    await expectClosed(raw, /stream ended inside a frame/);
  });
});

describe('after login', () => {
  async function loggedIn(server = srv): Promise<RawConn> {
    const raw = await RawConn.open(server.port);
    await raw.login();
    await raw.next(C.FrameServerInfo);
    return raw;
  }

  it('an oversized frame (10 MB header)', async () => {
    const raw = await loggedIn();
    raw.write(Buffer.from([C.FrameSendPacket, 0, 0x98, 0x96, 0x80]));
    await expectClosed(raw, /exceeds the limit/);
  });

  it('a SendPacket over MaxPacketSize, a short SendPacket, short and huge pings, a bad NotePreferred', async () => {
    const cases: Array<[Uint8Array, RegExp]> = [
      [encodeFrame(C.FrameSendPacket, new Uint8Array(32 + C.MaxPacketSize + 1)), /exceeds 65536/],
      [encodeFrame(C.FrameSendPacket, new Uint8Array(31)), /short SendPacket/],
      [encodeFrame(C.FramePing, new Uint8Array(7)), /short ping/],
      [encodeFrame(C.FramePing, new Uint8Array(1001)), /ping body too large/],
      [encodeFrame(C.FrameNotePreferred, new Uint8Array(2)), /NotePreferred frame of the wrong size/],
      [encodeFrame(C.FrameRecvPacket, new Uint8Array(40)), /client sent frame 0x05 \(RecvPacket\)/],
      [encodeFrame(C.FrameForwardPacket, new Uint8Array(80)), /without mesh permission/],
    ];
    for (const [frame, reason] of cases) {
      const raw = await loggedIn();
      raw.write(frame);
      await expectClosed(raw, reason);
    }
  });

  it('unknown frame types are skipped as derper does, and closed by a strict server', async () => {
    const raw = await loggedIn();
    const before = srv.derp.metrics.unknownFrames;
    raw.write(encodeFrame(0x7e, new Uint8Array(100)));
    raw.write(encodeFrame(C.FramePing, new Uint8Array(8)));
    await raw.next(C.FramePong);
    expect(srv.derp.metrics.unknownFrames).toBe(before + 1);
    expect(raw.closed).toBe(false);
    raw.destroy();
    const s = await loggedIn(strict);
    s.write(encodeFrame(0x7e, new Uint8Array(100)));
    await expectClosed(s, /client sent frame 0x7e/);
    expect(srv.derp.metrics.badInputCloses).toBeGreaterThan(5);
  });
});

describe('a client facing a bad server', () => {
  let fake: Server;
  let port = 0;
  let greeting: Buffer = Buffer.alloc(0);
  beforeAll(async () => {
    fake = createServer((s) => {
      s.once('data', () => {
        s.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: DERP\r\nConnection: Upgrade\r\n\r\n');
        s.write(greeting);
      });
      s.on('error', () => {});
    });
    await new Promise<void>((r) => fake.listen(0, '127.0.0.1', () => r()));
    port = (fake.address() as { port: number }).port;
  });
  afterAll(() => new Promise<void>((r) => fake.close(() => r())));

  const tryConnect = () =>
    DerpClient.connect({
      url: `http://127.0.0.1:${port}/derp`,
      privateKey: generateNodeKeyPair().privateKey,
      timeoutMs: 1000,
    });

  it('wrong magic', async () => {
    greeting = encodeFrame(C.FrameServerKey, Buffer.from('DERP!!!!'), new Uint8Array(32));
    await expect(tryConnect()).rejects.toMatchObject({ code: 'BAD_MAGIC' });
  });

  it('a different first frame', async () => {
    greeting = encodeFrame(C.FrameKeepAlive);
    await expect(tryConnect()).rejects.toMatchObject({ code: 'UNEXPECTED_FRAME' });
  });

  it('an oversized greeting', async () => {
    greeting = Buffer.from([C.FrameServerKey, 0, 0, 8, 0]);
    await expect(tryConnect()).rejects.toMatchObject({ code: 'FRAME_TOO_LARGE' });
  });

  it('a greeting and then silence', async () => {
    greeting = encodeFrame(C.FrameServerKey, C.Magic, generateNodeKeyPair().publicKey);
    await expect(tryConnect()).rejects.toMatchObject({ code: 'TIMEOUT' });
  });
});
