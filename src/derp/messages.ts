/**
 * Payload layouts of every DERP frame (derp/derp.go comments, derp_client.go recvTimeout,
 * derpserver.go send*); the login JSON is in info.ts. Decoders are strict where the
 * real peers are strict and lenient where they are lenient: a short PeerGone or RecvPacket is
 * dropped by derp_client.go, so {@link decodeServerFrame} returns undefined for it.
 */
import {
  FrameClientInfo,
  FrameClosePeer,
  FrameForwardPacket,
  FrameHealth,
  FrameKeepAlive,
  FrameNotePreferred,
  FramePeerGone,
  FramePeerPresent,
  FramePing,
  FramePong,
  FrameRecvPacket,
  FrameRestarting,
  FrameSendPacket,
  FrameServerInfo,
  FrameServerKey,
  FrameWatchConns,
  KeyLen,
  Magic,
  NonceLen,
  PeerGoneReasonDisconnected,
  PingLen,
} from './constants.js';
import { DerpError } from './errors.js';
import { encodeFrame, frameName } from './frame.js';

export * from './info.js';

/** A frame from server to client after login, decoded (ServerInfo is consumed by the login). */
export type ServerMessage =
  | { type: 'packet'; source: Uint8Array; data: Uint8Array }
  | { type: 'keepAlive' }
  | { type: 'peerGone'; peer: Uint8Array; reason: number }
  | { type: 'peerPresent'; peer: Uint8Array; ip?: string; port?: number; flags?: number }
  | { type: 'ping'; data: Uint8Array }
  | { type: 'pong'; data: Uint8Array }
  | { type: 'health'; problem: string }
  | { type: 'restarting'; reconnectInMs: number; tryForMs: number };

const utf8 = new TextEncoder();

/**
 * FrameServerKey: the magic, then the server's public key.
 *
 * @example
 * conn.write(encodeServerKey(server.publicKey));
 */
export function encodeServerKey(serverPublic: Uint8Array): Buffer {
  return encodeFrame(FrameServerKey, Magic, serverPublic);
}

/**
 * The server key from a FrameServerKey payload. Extra trailing bytes are allowed "for future
 * use" (derp_client.go recvServerKey); a wrong magic or short payload is BAD_MAGIC.
 *
 * @example
 * const serverKey = decodeServerKey(payload);
 */
export function decodeServerKey(payload: Uint8Array): Uint8Array {
  if (payload.length < Magic.length + KeyLen) {
    throw new DerpError('BAD_MAGIC', `server greeting too short (${payload.length} bytes)`);
  }
  for (let i = 0; i < Magic.length; i++) {
    if (payload[i] !== Magic[i]) throw new DerpError('BAD_MAGIC', 'server greeting has the wrong magic');
  }
  return payload.slice(Magic.length, Magic.length + KeyLen);
}

/**
 * FrameClientInfo: our public key, then nonce + box(ClientInfo JSON) sealed to the server key.
 *
 * @example
 * conn.write(encodeClientInfo(myPublic, box.seal(clientInfoJson(info))));
 */
export function encodeClientInfo(clientPublic: Uint8Array, sealed: Uint8Array): Buffer {
  return encodeFrame(FrameClientInfo, clientPublic, sealed);
}

/**
 * Splits a FrameClientInfo payload into the client's key and the sealed JSON (TRUNCATED if short).
 *
 * @example
 * const { key, sealed } = decodeClientInfoFrame(payload);
 */
export function decodeClientInfoFrame(payload: Uint8Array): { key: Uint8Array; sealed: Uint8Array } {
  if (payload.length < KeyLen + NonceLen) {
    throw new DerpError('TRUNCATED', `short ClientInfo frame (${payload.length} bytes)`);
  }
  return { key: payload.slice(0, KeyLen), sealed: payload.subarray(KeyLen) };
}

/**
 * FrameServerInfo: nonce + box(ServerInfo JSON) sealed to the client's key.
 *
 * @example
 * conn.write(encodeServerInfo(box.seal(serverInfoJson({ version: 2 }))));
 */
export function encodeServerInfo(sealed: Uint8Array): Buffer {
  return encodeFrame(FrameServerInfo, sealed);
}

/**
 * FrameSendPacket: destination key, then the packet.
 *
 * @example
 * conn.write(encodeSendPacket(peerKey, packet));
 */
export function encodeSendPacket(dst: Uint8Array, data: Uint8Array): Buffer {
  return encodeFrame(FrameSendPacket, dst, data);
}

/**
 * FrameRecvPacket (v2): source key, then the packet.
 *
 * @example
 * conn.write(encodeRecvPacket(senderKey, packet));
 */
export function encodeRecvPacket(src: Uint8Array, data: Uint8Array): Buffer {
  return encodeFrame(FrameRecvPacket, src, data);
}

/**
 * FrameForwardPacket (mesh peers only): source key, destination key, then the packet.
 *
 * @example
 * conn.write(encodeForwardPacket(srcKey, dstKey, packet));
 */
export function encodeForwardPacket(src: Uint8Array, dst: Uint8Array, data: Uint8Array): Buffer {
  return encodeFrame(FrameForwardPacket, src, dst, data);
}

/**
 * FrameKeepAlive: no payload.
 *
 * @example
 * conn.write(encodeKeepAlive());
 */
export function encodeKeepAlive(): Buffer {
  return encodeFrame(FrameKeepAlive);
}

/**
 * FrameNotePreferred: one byte, 1 when this server is the client's home.
 *
 * @example
 * conn.write(encodeNotePreferred(true));
 */
export function encodeNotePreferred(preferred: boolean): Buffer {
  return encodeFrame(FrameNotePreferred, Uint8Array.of(preferred ? 1 : 0));
}

/**
 * FramePeerGone: the departed peer's key and a reason byte.
 *
 * @example
 * conn.write(encodePeerGone(peerKey, PeerGoneReasonNotHere));
 */
export function encodePeerGone(peer: Uint8Array, reason = PeerGoneReasonDisconnected): Buffer {
  return encodeFrame(FramePeerGone, peer, Uint8Array.of(reason));
}

/**
 * FramePeerPresent as derpserver.go sendPeerPresent: key, 16-byte IP, big-endian port, flags
 * (51 bytes; derp.go's comment still says 41).
 *
 * @example
 * conn.write(encodePeerPresent(key, ipTo16('10.0.0.1'), 41641, PeerPresentIsRegular));
 */
export function encodePeerPresent(peer: Uint8Array, ip16: Uint8Array, port: number, flags: number): Buffer {
  const tail = new Uint8Array(19);
  tail.set(ip16.subarray(0, 16), 0);
  tail[16] = port >>> 8;
  tail[17] = port & 0xff;
  tail[18] = flags;
  return encodeFrame(FramePeerPresent, peer, tail);
}

/**
 * FrameWatchConns (mesh peers only): no payload.
 *
 * @example
 * conn.write(encodeWatchConns());
 */
export function encodeWatchConns(): Buffer {
  return encodeFrame(FrameWatchConns);
}

/**
 * FrameClosePeer (mesh peers only): the key whose connections to close.
 *
 * @example
 * conn.write(encodeClosePeer(peerKey));
 */
export function encodeClosePeer(peer: Uint8Array): Buffer {
  return encodeFrame(FrameClosePeer, peer);
}

/**
 * FramePing with an 8-byte payload to be echoed.
 *
 * @example
 * conn.write(encodePing(randomBytes(8)));
 */
export function encodePing(data: Uint8Array): Buffer {
  if (data.length !== PingLen) throw new DerpError('BAD_FRAME', `ping payload must be ${PingLen} bytes`);
  return encodeFrame(FramePing, data);
}

/**
 * FramePong echoing a ping's 8 bytes.
 *
 * @example
 * conn.write(encodePong(ping.data));
 */
export function encodePong(data: Uint8Array): Buffer {
  if (data.length !== PingLen) throw new DerpError('BAD_FRAME', `pong payload must be ${PingLen} bytes`);
  return encodeFrame(FramePong, data);
}

/**
 * FrameHealth: a problem description; empty clears it.
 *
 * @example
 * conn.write(encodeHealth('duplicate connection'));
 */
export function encodeHealth(problem: string): Buffer {
  return encodeFrame(FrameHealth, utf8.encode(problem));
}

/**
 * FrameRestarting: when to reconnect and how long to keep trying, in ms (big-endian uint32s).
 *
 * @example
 * conn.write(encodeRestarting(1000, 30_000));
 */
export function encodeRestarting(reconnectInMs: number, tryForMs: number): Buffer {
  const b = Buffer.allocUnsafe(8);
  b.writeUInt32BE(reconnectInMs >>> 0, 0);
  b.writeUInt32BE(tryForMs >>> 0, 4);
  return encodeFrame(FrameRestarting, b);
}

/**
 * The 16-byte form of an IP text (IPv4 as ::ffff:a.b.c.d), as Go's netip.Addr.As16.
 *
 * @example
 * ipTo16('127.0.0.1');   // 00…00 ff ff 7f 00 00 01
 */
export function ipTo16(ip: string): Uint8Array {
  const out = new Uint8Array(16);
  const v4 = /^(?:::ffff:)?(\d+)\.(\d+)\.(\d+)\.(\d+)$/i.exec(ip);
  if (v4) {
    out[10] = 0xff;
    out[11] = 0xff;
    for (let i = 0; i < 4; i++) out[12 + i] = Number(v4[i + 1]);
    return out;
  }
  const [head = '', tail = ''] = ip.split('::');
  const h = head ? head.split(':') : [];
  const t = ip.includes('::') && tail ? tail.split(':') : [];
  const groups = [...h, ...new Array<string>(8 - h.length - t.length).fill('0'), ...t];
  groups.slice(0, 8).forEach((g, i) => {
    const v = Number.parseInt(g || '0', 16) & 0xffff;
    out[2 * i] = v >>> 8;
    out[2 * i + 1] = v & 0xff;
  });
  return out;
}

function ipFrom16(b: Uint8Array): string {
  const v4mapped = b.subarray(0, 10).every((x) => x === 0) && b[10] === 0xff && b[11] === 0xff;
  if (v4mapped) return `${b[12]}.${b[13]}.${b[14]}.${b[15]}`;
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(((b[i]! << 8) | b[i + 1]!).toString(16));
  return groups.join(':');
}

/**
 * Decodes a server-to-client frame as derp_client.go recvTimeout does: unknown types and
 * short PeerGone/PeerPresent/RecvPacket/Ping/Pong/Restarting frames give undefined (skipped);
 * ServerInfo is returned still sealed (the caller opens it with its box).
 *
 * @example
 * const m = decodeServerFrame(FrameKeepAlive, new Uint8Array(0)); // { type: 'keepAlive' }
 */
export function decodeServerFrame(type: number, p: Uint8Array): ServerMessage | undefined {
  switch (type) {
    case FrameRecvPacket:
      if (p.length < KeyLen) return undefined;
      return { type: 'packet', source: p.subarray(0, KeyLen), data: p.subarray(KeyLen) };
    case FrameKeepAlive:
      return { type: 'keepAlive' };
    case FramePeerGone:
      if (p.length < KeyLen) return undefined;
      // Older servers sent no reason byte (derp_client.go: "Backward compatibility").
      return { type: 'peerGone', peer: p.slice(0, KeyLen), reason: p.length > KeyLen ? p[KeyLen]! : 0 };
    case FramePeerPresent: {
      if (p.length < KeyLen) return undefined;
      const m: ServerMessage = { type: 'peerPresent', peer: p.slice(0, KeyLen) };
      if (p.length >= KeyLen + 18) {
        m.ip = ipFrom16(p.subarray(KeyLen, KeyLen + 16));
        m.port = (p[KeyLen + 16]! << 8) | p[KeyLen + 17]!;
        if (p.length >= KeyLen + 19) m.flags = p[KeyLen + 18]!;
      }
      return m;
    }
    case FramePing:
      return p.length < PingLen ? undefined : { type: 'ping', data: p.slice(0, PingLen) };
    case FramePong:
      return p.length < PingLen ? undefined : { type: 'pong', data: p.slice(0, PingLen) };
    case FrameHealth:
      return { type: 'health', problem: Buffer.from(p).toString('utf8') };
    case FrameRestarting: {
      if (p.length < 8) return undefined;
      const b = Buffer.from(p.buffer, p.byteOffset, p.byteLength);
      return { type: 'restarting', reconnectInMs: b.readUInt32BE(0), tryForMs: b.readUInt32BE(4) };
    }
    default:
      return undefined;
  }
}

/**
 * Throws UNEXPECTED_FRAME naming the frame that came and the one expected.
 *
 * @example
 * expectFrame(type, FrameClientInfo);
 */
export function expectFrame(got: number, want: number): void {
  if (got !== want) {
    throw new DerpError('UNEXPECTED_FRAME', `got frame ${frameName(got)}, want ${frameName(want)}`);
  }
}
