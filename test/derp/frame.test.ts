// The frame codec: every frame type of protocol v2 encoded and decoded, the stream reader under every
// chunking, size limits, the ClientInfo/ServerInfo JSON as Go writes it, and the NaCl box against tweetnacl's
// own box.
import { randomBytes } from 'node:crypto';
import nacl from 'tweetnacl';
import { describe, expect, it } from 'vitest';
import * as C from '../../src/derp/constants.js';
import { DerpError } from '../../src/derp/errors.js';
import { encodeFrame, FrameReader } from '../../src/derp/frame.js';
import { generateNodeKeyPair, keyFromHex, keyToHex, NaclBox, nodePublicKey } from '../../src/derp/keys.js';
import * as M from '../../src/derp/messages.js';

const key = () => new Uint8Array(randomBytes(32));

/** Decoded fields are Buffers (views of the read chunk); compare them as plain bytes. */
function norm<T>(v: T): T {
  if (v instanceof Uint8Array) return new Uint8Array(v) as T;
  if (typeof v !== 'object' || v === null) return v;
  return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, norm(x)])) as T;
}

/** Splits `bytes` into chunks of the given sizes (cycled) and returns the frames read. */
function readAll(bytes: Uint8Array, sizes: number[], max = 1 << 20): Array<[number, Buffer]> {
  const out: Array<[number, Buffer]> = [];
  const r = new FrameReader((t, p) => out.push([t, Buffer.from(p)]), max);
  let off = 0;
  let i = 0;
  while (off < bytes.length) {
    const n = sizes[i++ % sizes.length]!;
    r.push(Buffer.from(bytes.subarray(off, off + n)));
    off += n;
  }
  expect(r.midFrame).toBe(false);
  return out;
}

describe('frame header and reader', () => {
  it('writes type + big-endian length', () => {
    const f = encodeFrame(C.FramePing, new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8]));
    expect([...f.subarray(0, 5)]).toEqual([0x12, 0, 0, 0, 8]);
    expect(f.length).toBe(13);
  });

  it('reads the same frames whatever the chunking', () => {
    const frames = [
      M.encodeKeepAlive(),
      M.encodeSendPacket(key(), randomBytes(3000)),
      M.encodePing(randomBytes(8)),
      M.encodeRecvPacket(key(), randomBytes(70_000 - 32 - 5).subarray(0, 65536)),
      M.encodeNotePreferred(true),
    ];
    const stream = Buffer.concat(frames);
    for (const sizes of [[1], [2, 3], [5], [7, 4096], [stream.length], [65_536, 1]]) {
      const got = readAll(stream, sizes);
      expect(got.map(([t]) => t)).toEqual(frames.map((f) => f[0]));
      got.forEach(([, p], i) => {
        expect(Buffer.compare(p, frames[i]!.subarray(5))).toBe(0);
      });
    }
  });

  it('refuses an oversized frame at its header, before buffering the payload', () => {
    const r = new FrameReader(() => {}, 100);
    const err = (() => {
      try {
        r.push(Buffer.from([0x04, 0, 0, 0, 101]));
      } catch (e) {
        return e;
      }
    })();
    expect(err).toBeInstanceOf(DerpError);
    expect((err as DerpError).code).toBe('FRAME_TOO_LARGE');
    // A stopped reader ignores whatever follows.
    expect(() => r.push(Buffer.alloc(10))).not.toThrow();
  });

  it('holds only the bytes that came of a large frame, not what its header declares', () => {
    const frames: Buffer[] = [];
    const r = new FrameReader((_t, p) => frames.push(p), 256 << 10);
    const header = Buffer.alloc(5);
    header.writeUInt32BE(200 << 10, 1);
    r.push(Buffer.concat([header, Buffer.alloc(10, 7)]));
    expect(r.heldBytes).toBe(10);
    const rest = Buffer.alloc((200 << 10) - 10, 7);
    r.push(rest.subarray(0, 1000));
    expect(r.heldBytes).toBe(1010);
    r.push(rest.subarray(1000));
    expect(frames.map((f) => [f.length, f.every((b) => b === 7)])).toEqual([[200 << 10, true]]);
    // A small frame is still read into one buffer sized at its header.
    r.push(Buffer.from([0x04, 0, 0, 4, 0, 1]));
    expect(r.heldBytes).toBe(1024);
  });

  it('reports a stream that ends inside a frame', () => {
    const r = new FrameReader(() => {}, 1000);
    r.push(Buffer.from([0x04, 0, 0]));
    expect(r.midFrame).toBe(true);
    r.push(Buffer.from([0, 40, 1, 2]));
    expect(r.midFrame).toBe(true);
  });
});

describe('every frame type', () => {
  it('ServerKey: magic + key; a wrong magic or short greeting is BAD_MAGIC; extra bytes allowed', () => {
    const k = key();
    const f = M.encodeServerKey(k);
    expect([...f.subarray(5, 13)]).toEqual([0x44, 0x45, 0x52, 0x50, 0xf0, 0x9f, 0x94, 0x91]);
    expect(norm(M.decodeServerKey(f.subarray(5)))).toEqual(k);
    expect(norm(M.decodeServerKey(Buffer.concat([f.subarray(5), Buffer.alloc(10)])))).toEqual(k);
    const bad = Buffer.from(f.subarray(5));
    bad[0] = 0x45;
    expect(() => M.decodeServerKey(bad)).toThrow(expect.objectContaining({ code: 'BAD_MAGIC' }));
    expect(() => M.decodeServerKey(bad.subarray(0, 39))).toThrow(
      expect.objectContaining({ code: 'BAD_MAGIC' }),
    );
  });

  it('ClientInfo and ServerInfo: key + sealed JSON, fields named as Go marshals them', () => {
    const k = key();
    const sealed = randomBytes(60);
    const f = M.encodeClientInfo(k, sealed);
    expect(f[0]).toBe(C.FrameClientInfo);
    const d = M.decodeClientInfoFrame(f.subarray(5));
    expect(norm(d.key)).toEqual(k);
    expect(Buffer.from(d.sealed).equals(sealed)).toBe(true);
    expect(() => M.decodeClientInfoFrame(new Uint8Array(55))).toThrow(
      expect.objectContaining({ code: 'TRUNCATED' }),
    );
    const info = { version: 2, canAckPings: true, isProber: true, appName: 'qs', meshKey: 'ab'.repeat(32) };
    const json = new TextDecoder().decode(M.clientInfoJson(info));
    expect(JSON.parse(json)).toEqual({
      meshKey: 'ab'.repeat(32),
      version: 2,
      CanAckPings: true,
      IsProber: true,
      AppName: 'qs',
    });
    expect(M.parseClientInfo(M.clientInfoJson(info))).toEqual(info);
    // Go's encoding/json matches field names case-insensitively.
    expect(M.parseClientInfo(new TextEncoder().encode('{"VERSION":2,"canackpings":true}'))).toEqual({
      version: 2,
      canAckPings: true,
    });
    expect(() => M.parseClientInfo(new TextEncoder().encode('{"version":"2"}'))).toThrow(
      expect.objectContaining({ code: 'BAD_JSON' }),
    );
    expect(() => M.parseClientInfo(new TextEncoder().encode('[1]'))).toThrow(
      expect.objectContaining({ code: 'BAD_JSON' }),
    );
    expect(new TextDecoder().decode(M.serverInfoJson({ version: 2 }))).toBe('{"version":2}');
    expect(
      M.parseServerInfo(new TextEncoder().encode('{"version":2,"TokenBucketBytesPerSecond":5}')),
    ).toEqual({
      version: 2,
      tokenBucketBytesPerSecond: 5,
    });
    expect(M.encodeServerInfo(sealed)[0]).toBe(C.FrameServerInfo);
  });

  it('SendPacket, RecvPacket and ForwardPacket carry keys then bytes', () => {
    const [a, b] = [key(), key()];
    const data = randomBytes(1420);
    const send = M.encodeSendPacket(b, data);
    expect(send.readUInt32BE(1)).toBe(32 + 1420);
    expect(Buffer.compare(send.subarray(5, 37), b)).toBe(0);
    const recv = norm(M.decodeServerFrame(C.FrameRecvPacket, M.encodeRecvPacket(a, data).subarray(5)));
    expect(recv).toEqual({ type: 'packet', source: a, data: new Uint8Array(data) });
    const fwd = M.encodeForwardPacket(a, b, data);
    expect(fwd[0]).toBe(C.FrameForwardPacket);
    expect(fwd.readUInt32BE(1)).toBe(64 + 1420);
    // derp_client.go drops a RecvPacket shorter than a key.
    expect(norm(M.decodeServerFrame(C.FrameRecvPacket, new Uint8Array(31)))).toBeUndefined();
  });

  it('KeepAlive, NotePreferred, WatchConns, ClosePeer', () => {
    expect([...M.encodeKeepAlive()]).toEqual([0x06, 0, 0, 0, 0]);
    expect(norm(M.decodeServerFrame(C.FrameKeepAlive, new Uint8Array(0)))).toEqual({ type: 'keepAlive' });
    expect([...M.encodeNotePreferred(true)]).toEqual([0x07, 0, 0, 0, 1, 1]);
    expect([...M.encodeNotePreferred(false)]).toEqual([0x07, 0, 0, 0, 1, 0]);
    expect([...M.encodeWatchConns()]).toEqual([0x10, 0, 0, 0, 0]);
    const k = key();
    expect(Buffer.compare(M.encodeClosePeer(k).subarray(5), k)).toBe(0);
  });

  it('PeerGone with and without the reason byte', () => {
    const k = key();
    const f = M.encodePeerGone(k, C.PeerGoneReasonNotHere);
    expect(f.readUInt32BE(1)).toBe(33);
    expect(norm(M.decodeServerFrame(C.FramePeerGone, f.subarray(5)))).toEqual({
      type: 'peerGone',
      peer: k,
      reason: 1,
    });
    expect(norm(M.decodeServerFrame(C.FramePeerGone, k))).toEqual({ type: 'peerGone', peer: k, reason: 0 });
    expect(norm(M.decodeServerFrame(C.FramePeerGone, k.subarray(0, 31)))).toBeUndefined();
  });

  it("PeerPresent: 51 bytes from current servers (derp.go's comment says 41), shorter from old ones", () => {
    const k = key();
    const f = M.encodePeerPresent(k, M.ipTo16('10.1.2.3'), 41641, C.PeerPresentIsProber);
    expect(f.readUInt32BE(1)).toBe(51);
    expect(norm(M.decodeServerFrame(C.FramePeerPresent, f.subarray(5)))).toEqual({
      type: 'peerPresent',
      peer: k,
      ip: '10.1.2.3',
      port: 41641,
      flags: 4,
    });
    const v6 = M.encodePeerPresent(k, M.ipTo16('fd7a:115c::1'), 1, 1);
    expect(norm(M.decodeServerFrame(C.FramePeerPresent, v6.subarray(5)))).toMatchObject({
      ip: 'fd7a:115c:0:0:0:0:0:1',
    });
    expect(norm(M.decodeServerFrame(C.FramePeerPresent, k))).toEqual({ type: 'peerPresent', peer: k });
    expect(norm(M.decodeServerFrame(C.FramePeerPresent, f.subarray(5, 5 + 50)))).toMatchObject({
      port: 41641,
    });
  });

  it('Ping and Pong: 8 bytes, echoed', () => {
    const d = new Uint8Array(randomBytes(8));
    expect(norm(M.decodeServerFrame(C.FramePing, M.encodePing(d).subarray(5)))).toEqual({
      type: 'ping',
      data: d,
    });
    expect(norm(M.decodeServerFrame(C.FramePong, M.encodePong(d).subarray(5)))).toEqual({
      type: 'pong',
      data: d,
    });
    expect(norm(M.decodeServerFrame(C.FramePong, d.subarray(0, 7)))).toBeUndefined();
    expect(() => M.encodePing(new Uint8Array(7))).toThrow(DerpError);
  });

  it('Health and Restarting', () => {
    expect(norm(M.decodeServerFrame(C.FrameHealth, M.encodeHealth('duplicate key').subarray(5)))).toEqual({
      type: 'health',
      problem: 'duplicate key',
    });
    expect(
      norm(M.decodeServerFrame(C.FrameRestarting, M.encodeRestarting(1500, 30_000).subarray(5))),
    ).toEqual({
      type: 'restarting',
      reconnectInMs: 1500,
      tryForMs: 30_000,
    });
    expect(norm(M.decodeServerFrame(C.FrameRestarting, new Uint8Array(7)))).toBeUndefined();
  });

  it('an unknown frame type decodes to nothing (skipped, as derp_client.go)', () => {
    expect(norm(M.decodeServerFrame(0x7f, new Uint8Array(4)))).toBeUndefined();
    expect(norm(M.decodeServerFrame(C.FrameSendPacket, new Uint8Array(40)))).toBeUndefined();
  });
});

describe('keys and the NaCl box', () => {
  it('is crypto_box: tweetnacl opens what we seal and the reverse', () => {
    const a = generateNodeKeyPair();
    const b = generateNodeKeyPair();
    expect(nodePublicKey(a.privateKey)).toEqual(a.publicKey);
    expect(nacl.box.keyPair.fromSecretKey(a.privateKey).publicKey).toEqual(a.publicKey);
    const msg = new TextEncoder().encode('{"version":2}');
    const sealed = NaclBox.between(a.privateKey, b.publicKey).seal(msg);
    const opened = nacl.box.open(sealed.subarray(24), sealed.subarray(0, 24), a.publicKey, b.privateKey);
    expect(opened).toEqual(msg);
    const nonce = new Uint8Array(randomBytes(24));
    const theirs = nacl.box(msg, nonce, a.publicKey, b.privateKey);
    expect(NaclBox.between(a.privateKey, b.publicKey).open(Buffer.concat([nonce, theirs]))).toEqual(msg);
  });

  it('refuses a tampered box, a short box, a wrong-length key and a low-order point', () => {
    const a = generateNodeKeyPair();
    const b = generateNodeKeyPair();
    const box = NaclBox.between(a.privateKey, b.publicKey);
    const sealed = box.seal(new Uint8Array(10));
    sealed[30]! ^= 1;
    expect(() => box.open(sealed)).toThrow(expect.objectContaining({ code: 'BAD_BOX' }));
    expect(() => box.open(new Uint8Array(39))).toThrow(expect.objectContaining({ code: 'BAD_BOX' }));
    expect(() => NaclBox.between(a.privateKey, new Uint8Array(31))).toThrow(
      expect.objectContaining({ code: 'BAD_KEY' }),
    );
    expect(() => NaclBox.between(a.privateKey, new Uint8Array(32))).toThrow(
      expect.objectContaining({ code: 'BAD_BOX' }),
    );
  });

  it('hex forms round-trip and errors never echo the key', () => {
    const k = key();
    expect(keyFromHex(`nodekey:${keyToHex(k)}`)).toEqual(k);
    const secret = `privkey:${'zz'.repeat(32)}`;
    try {
      keyFromHex(secret);
      expect.unreachable();
    } catch (e) {
      expect((e as Error).message).not.toContain('zz');
    }
  });
});
