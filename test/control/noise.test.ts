import { type Duplex, PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { ProtocolError } from '../../src/control/errors.js';
import { PrivateKey } from '../../src/control/keys.js';
import { NoiseConn } from '../../src/control/noise/conn.js';
import { EarlyPayloadParser, encodeEarlyPayload } from '../../src/control/noise/early.js';
import { FrameReader, MAX_PLAINTEXT_SIZE } from '../../src/control/noise/frames.js';
import { clientInitiation, serverAccept } from '../../src/control/noise/handshake.js';
import { duplexPair } from './helpers.js';

function handshake() {
  const machine = PrivateKey.generate('machine');
  const control = PrivateKey.generate('machine');
  const hs = clientInitiation(machine, control.publicKey, 130);
  const srv = serverAccept(control, hs.initiation);
  const keys = hs.finish(srv.response);
  return { machine, control, hs, srv, keys };
}

describe('ts2021 Noise handshake', () => {
  it('agrees on transport keys and reveals the client machine key to the server', () => {
    const { machine, srv, keys } = handshake();
    expect(srv.clientMachineKey.equals(machine.publicKey)).toBe(true);
    expect(srv.clientVersion).toBe(130);
    expect(Buffer.from(keys.send)).toEqual(Buffer.from(srv.keys.receive));
    expect(Buffer.from(keys.receive)).toEqual(Buffer.from(srv.keys.send));
    expect(Buffer.from(keys.handshakeHash)).toEqual(Buffer.from(srv.keys.handshakeHash));
    expect(Buffer.from(keys.send)).not.toEqual(Buffer.from(keys.receive));
  });

  it('lays out the initiation as version, type 1, length 96', () => {
    const { hs } = handshake();
    expect(hs.initiation.length).toBe(101);
    expect(hs.initiation.readUInt16BE(0)).toBe(130);
    expect(hs.initiation[2]).toBe(1);
    expect(hs.initiation.readUInt16BE(3)).toBe(96);
  });

  it('refuses an initiation made for another server key', () => {
    const machine = PrivateKey.generate('machine');
    const hs = clientInitiation(machine, PrivateKey.generate('machine').publicKey, 130);
    expect(() => serverAccept(PrivateKey.generate('machine'), hs.initiation)).toThrow(ProtocolError);
  });

  it('refuses a tampered response', () => {
    const machine = PrivateKey.generate('machine');
    const control = PrivateKey.generate('machine');
    const hs = clientInitiation(machine, control.publicKey, 130);
    const srv = serverAccept(control, hs.initiation);
    const bad = Buffer.from(srv.response);
    bad[40] = (bad[40] ?? 0) ^ 1;
    expect(() => hs.finish(bad)).toThrow(/did not decrypt/);
  });

  it('binds the protocol version into the prologue', () => {
    const machine = PrivateKey.generate('machine');
    const control = PrivateKey.generate('machine');
    const hs = clientInitiation(machine, control.publicKey, 130);
    const altered = Buffer.from(hs.initiation);
    altered.writeUInt16BE(131, 0);
    expect(() => serverAccept(control, altered)).toThrow(ProtocolError);
  });
});

describe('NoiseConn', () => {
  function pair(opts: { early?: Buffer } = {}) {
    const { keys, srv } = handshake();
    const [a, b] = duplexPair();
    const client = new NoiseConn(a, keys, { parseEarlyPayload: true });
    const server = new NoiseConn(b, srv.keys, { earlyWrite: opts.early });
    return { client, server };
  }

  function collect(s: Duplex, n: number): Promise<Buffer> {
    return new Promise((resolve) => {
      const chunks: Buffer[] = [];
      let got = 0;
      s.on('data', (c: Buffer) => {
        chunks.push(c);
        got += c.length;
        if (got >= n) resolve(Buffer.concat(chunks));
      });
    });
  }

  it('carries data larger than one record in both directions', async () => {
    const { client, server } = pair();
    const big = Buffer.alloc(3 * MAX_PLAINTEXT_SIZE + 123, 7);
    big.writeUInt32BE(0xdeadbeef, 5000);
    const atServer = collect(server, big.length);
    client.write(big);
    expect((await atServer).equals(big)).toBe(true);
    // The client holds back its first 9 bytes to look for an early payload, as ts2021/conn.go does.
    const atClient = collect(client, 12);
    server.write('hello, world');
    expect((await atClient).toString()).toBe('hello, world');
  });

  it('strips an early payload and emits it', async () => {
    const early = encodeEarlyPayload({ nodeKeyChallenge: `chalpub:${'ab'.repeat(32)}` });
    const { client, server } = pair({ early });
    const seen = new Promise((resolve) => client.once('early', resolve));
    const data = collect(client, 3);
    server.write('h2!');
    expect(await seen).toEqual({ nodeKeyChallenge: `chalpub:${'ab'.repeat(32)}` });
    expect((await data).toString()).toBe('h2!');
  });

  it('passes through a stream that starts without the magic', async () => {
    const { client, server } = pair();
    const data = collect(client, 12);
    server.write('PRI * HTTP/2');
    expect((await data).toString()).toBe('PRI * HTTP/2');
    expect(client.earlyPayload).toBeUndefined();
  });

  it('opens the records read with the handshake before those the socket buffered meanwhile', async () => {
    const { keys, srv } = handshake();
    const [a, b] = duplexPair();
    const server = new NoiseConn(b, srv.keys);
    const records: Buffer[] = [];
    a.on('data', (c: Buffer) => records.push(c));
    for (const word of ['one', 'two']) await new Promise((r) => server.write(word, r));
    await new Promise((r) => setImmediate(r));
    expect(records).toHaveLength(2);
    // As after dial.ts's finishNoise: the first record came with the handshake response, the
    // second waits in the paused socket's buffer.
    const socket = new PassThrough();
    socket.pause();
    socket.write(records[1]);
    // Made in a macrotask, as in a socket's 'data' handler: there, nextTicks run before microtasks.
    const got = await new Promise<string>((resolve) =>
      setImmediate(() => {
        const client = new NoiseConn(socket, keys, { initial: records[0] });
        client.once('error', (e) => resolve(`error: ${e.message}`));
        void collect(client, 6).then((data) => resolve(String(data)));
      }),
    );
    expect(got).toBe('onetwo');
  });

  it('fails the connection on a corrupted record', async () => {
    const { keys } = handshake();
    const [a, b] = duplexPair();
    const client = new NoiseConn(a, keys);
    const failed = new Promise<Error>((resolve) => client.once('error', resolve));
    b.write(Buffer.from([4, 0, 20, ...Buffer.alloc(20, 1)]));
    expect(await failed).toBeInstanceOf(ProtocolError);
  });
});

describe('framing helpers', () => {
  it('refuses a frame over 4096 bytes', () => {
    const r = new FrameReader();
    expect(() => r.push(Buffer.from([4, 0x10, 0x00]))).toThrow(RangeError);
  });

  it('parses an early payload split across chunks', () => {
    const p = new EarlyPayloadParser();
    const bytes = Buffer.concat([encodeEarlyPayload({ a: 1 }), Buffer.from('rest')]);
    const out: Buffer[] = [];
    for (const b of bytes) out.push(p.push(Buffer.from([b])));
    expect(p.payload).toEqual({ a: 1 });
    expect(Buffer.concat(out).toString()).toBe('rest');
  });
});
