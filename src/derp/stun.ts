/**
 * STUN (RFC 5389) as DERP servers and Tailscale clients use it (net/stun/stun.go,
 * net/stunserver): a Binding request with SOFTWARE and FINGERPRINT, and a success response
 * carrying XOR-MAPPED-ADDRESS. The responder answers any well-formed Binding request; it
 * checks FINGERPRINT when present (derper additionally insists on SOFTWARE "tailnode").
 */
import { randomBytes } from 'node:crypto';
import { createSocket, type RemoteInfo, type Socket } from 'node:dgram';
import { isIPv6 } from 'node:net';
import { zlib } from './crc32.js';
import { DerpError } from './errors.js';
import { bindBothFamilies, formatAddress } from './listen.js';
import { ipTo16 } from './messages.js';

const MAGIC_COOKIE = 0x2112a442;
const HEADER_LEN = 20;
const BINDING_REQUEST = 0x0001;
const BINDING_SUCCESS = 0x0101;
const ATTR_MAPPED_ADDRESS = 0x0001;
const ATTR_XOR_MAPPED_ADDRESS = 0x0020;
/** Pre-RFC 5389 servers used 0x8020 (stun.go attrXorMappedAddressAlt). */
const ATTR_XOR_MAPPED_ADDRESS_ALT = 0x8020;
const ATTR_SOFTWARE = 0x8022;
const ATTR_FINGERPRINT = 0x8028;
/** RFC 5389 §15.5: CRC-32 of the message XOR 0x5354554e. */
const FINGERPRINT_XOR = 0x5354554e;
const SOFTWARE = Buffer.from('tailnode');

/**
 * Whether `b` looks like STUN: top two bits zero and the magic cookie (stun.go Is).
 *
 * @example
 * if (isStun(datagram)) handleStun(datagram);
 */
export function isStun(b: Uint8Array): boolean {
  // Read in place: every datagram magicsock receives passes here, and Buffer.from(b) copied it.
  if (b.length < HEADER_LEN || (b[0]! & 0xc0) !== 0) return false;
  return ((b[4]! << 24) | (b[5]! << 16) | (b[6]! << 8) | b[7]!) >>> 0 === MAGIC_COOKIE;
}

function* attrs(b: Buffer): Generator<[number, Buffer]> {
  let off = HEADER_LEN;
  const end = HEADER_LEN + b.readUInt16BE(2);
  if (end > b.length) throw new DerpError('BAD_STUN', 'STUN length field exceeds the packet');
  while (off < end) {
    if (end - off < 4) throw new DerpError('BAD_STUN', 'truncated STUN attribute header');
    const type = b.readUInt16BE(off);
    const len = b.readUInt16BE(off + 2);
    const padded = (len + 3) & ~3;
    if (off + 4 + padded > end)
      throw new DerpError('BAD_STUN', `STUN attribute 0x${type.toString(16)} overruns the message`);
    yield [type, b.subarray(off + 4, off + 4 + len)];
    off += 4 + padded;
  }
}

/**
 * A Binding request exactly like Tailscale's stun.Request: SOFTWARE "tailnode" + FINGERPRINT.
 *
 * @example
 * const tx = randomBytes(12); socket.send(stunRequest(tx), 3478, '127.0.0.1');
 */
export function stunRequest(txId: Uint8Array): Buffer {
  const b = Buffer.alloc(HEADER_LEN + 4 + SOFTWARE.length + 8);
  b.writeUInt16BE(BINDING_REQUEST, 0);
  b.writeUInt16BE(b.length - HEADER_LEN, 2);
  b.writeUInt32BE(MAGIC_COOKIE, 4);
  b.set(txId.subarray(0, 12), 8);
  b.writeUInt16BE(ATTR_SOFTWARE, 20);
  b.writeUInt16BE(SOFTWARE.length, 22);
  SOFTWARE.copy(b, 24);
  const fpAt = 24 + SOFTWARE.length;
  b.writeUInt16BE(ATTR_FINGERPRINT, fpAt);
  b.writeUInt16BE(4, fpAt + 2);
  b.writeUInt32BE((zlib(b.subarray(0, fpAt)) ^ FINGERPRINT_XOR) >>> 0, fpAt + 4);
  return b;
}

/**
 * The transaction ID of a valid Binding request; throws BAD_STUN otherwise.
 *
 * @example
 * const tx = parseBindingRequest(datagram);
 */
export function parseBindingRequest(pkt: Uint8Array): Uint8Array {
  const b = Buffer.from(pkt.buffer, pkt.byteOffset, pkt.byteLength);
  if (!isStun(b)) throw new DerpError('BAD_STUN', 'not a STUN packet');
  if (b.readUInt16BE(0) !== BINDING_REQUEST) throw new DerpError('BAD_STUN', 'not a Binding request');
  let off = HEADER_LEN;
  for (const [type, value] of attrs(b)) {
    if (type === ATTR_FINGERPRINT) {
      if (value.length !== 4) throw new DerpError('BAD_STUN', 'bad FINGERPRINT length');
      const want = (zlib(b.subarray(0, off)) ^ FINGERPRINT_XOR) >>> 0;
      if (value.readUInt32BE(0) !== want) throw new DerpError('BAD_STUN', 'wrong FINGERPRINT');
    }
    off += 4 + ((value.length + 3) & ~3);
  }
  return b.subarray(8, 20);
}

/**
 * A Binding success response with XOR-MAPPED-ADDRESS for `ip:port` (stun.go Response).
 *
 * @example
 * socket.send(stunResponse(tx, from.address, from.port), from.port, from.address);
 */
export function stunResponse(txId: Uint8Array, ip: string, port: number): Buffer {
  const v6 = isIPv6(ip) && !/^::ffff:\d+\./i.test(ip);
  const addr = ipTo16(ip).subarray(v6 ? 0 : 12);
  const b = Buffer.alloc(HEADER_LEN + 8 + addr.length);
  b.writeUInt16BE(BINDING_SUCCESS, 0);
  b.writeUInt16BE(8 + addr.length, 2);
  b.writeUInt32BE(MAGIC_COOKIE, 4);
  b.set(txId.subarray(0, 12), 8);
  b.writeUInt16BE(ATTR_XOR_MAPPED_ADDRESS, 20);
  b.writeUInt16BE(4 + addr.length, 22);
  b[25] = v6 ? 2 : 1;
  b.writeUInt16BE(port ^ (MAGIC_COOKIE >>> 16), 26);
  // RFC 5389 §15.2: XOR with the cookie, then (IPv6) with the transaction ID.
  for (let i = 0; i < addr.length; i++) b[28 + i] = addr[i]! ^ b[4 + i]!;
  return b;
}

/**
 * The transaction ID and mapped address of a Binding success response (XOR-MAPPED-ADDRESS,
 * its pre-RFC alias, or MAPPED-ADDRESS as a fallback); throws BAD_STUN.
 *
 * @example
 * const { ip, port } = parseStunResponse(datagram);
 */
export function parseStunResponse(pkt: Uint8Array): { txId: Uint8Array; ip: string; port: number } {
  const b = Buffer.from(pkt.buffer, pkt.byteOffset, pkt.byteLength);
  if (!isStun(b)) throw new DerpError('BAD_STUN', 'not a STUN packet');
  if (b.readUInt16BE(0) !== BINDING_SUCCESS)
    throw new DerpError('BAD_STUN', 'not a Binding success response');
  let fallback: { ip: string; port: number } | undefined;
  for (const [type, v] of attrs(b)) {
    const xor = type === ATTR_XOR_MAPPED_ADDRESS || type === ATTR_XOR_MAPPED_ADDRESS_ALT;
    if (!xor && type !== ATTR_MAPPED_ADDRESS) continue;
    if (v.length < 4) throw new DerpError('BAD_STUN', 'short address attribute');
    const len = v[1] === 1 ? 4 : v[1] === 2 ? 16 : 0;
    if (len === 0 || v.length < 4 + len) throw new DerpError('BAD_STUN', 'bad address family or length');
    const a = Buffer.from(v.subarray(4, 4 + len));
    let port = v.readUInt16BE(2);
    if (xor) {
      port ^= MAGIC_COOKIE >>> 16;
      for (let i = 0; i < len; i++) a[i]! ^= b[4 + i]!;
    }
    // A dual-stack server (Headscale's embedded STUN on 0.0.0.0) answers IPv4 clients with their address
    // mapped into IPv6 (::ffff:a.b.c.d); that is the IPv4 address we are seen at, as netip's Unmap says.
    const v4 = len === 4 ? a : isV4Mapped(a) ? a.subarray(12) : undefined;
    const ip = v4
      ? [...v4].join('.')
      : (a.toString('hex').match(/.{4}/g) ?? []).map((g) => g.replace(/^0+(?=.)/, '')).join(':');
    if (xor) return { txId: b.subarray(8, 20), ip, port };
    fallback = { ip, port };
  }
  if (fallback) return { txId: b.subarray(8, 20), ...fallback };
  throw new DerpError('BAD_STUN', 'response has no mapped address');
}

function isV4Mapped(a: Buffer): boolean {
  return a.length === 16 && a.subarray(0, 10).every((x) => x === 0) && a[10] === 0xff && a[11] === 0xff;
}

/**
 * A UDP STUN responder on a host and, for loopback or the wildcard, the same address in the
 * other IP family (listen.ts), so IPv6 clients get their IPv6 mapped address too.
 *
 * @example
 * const stun = await StunServer.listen({ host: '127.0.0.1', port: 3478 });   // and [::1]:3478
 * stun.close();
 */
export class StunServer {
  /** Requests answered, packets ignored as malformed, and socket errors (e.g. ICMP unreachable). */
  answered = 0;
  malformed = 0;
  errors = 0;

  private constructor(private readonly sockets: readonly Socket[]) {
    for (const socket of sockets) {
      socket.on('message', (msg: Buffer, from: RemoteInfo) => {
        let tx: Uint8Array;
        try {
          tx = parseBindingRequest(msg);
        } catch (err) {
          if (!(err instanceof DerpError)) throw err;
          this.malformed++;
          return;
        }
        this.answered++;
        socket.send(stunResponse(tx, from.address, from.port), from.port, from.address);
      });
      // A send to a vanished client can fail; that affects no one else, so count it and go on.
      socket.on('error', () => {
        this.errors++;
      });
    }
  }

  /**
   * Binds `host:port` (port 0 picks one), and the other family's loopback or wildcard on the
   * same port where the machine has it (`otherFamily: false`: only `host`).
   */
  static async listen(opts: { host: string; port: number; otherFamily?: boolean }): Promise<StunServer> {
    const sockets =
      opts.otherFamily === false
        ? [await bindUdp(opts.host, opts.port)]
        : await bindBothFamilies(opts.host, opts.port, {
            bind: bindUdp,
            port: (s) => s.address().port,
            close: (s) => {
              s.close();
            },
          });
    return new StunServer(sockets);
  }

  get port(): number {
    return this.sockets[0]!.address().port;
  }

  /** Where it answers, as `host:port` / `[v6]:port`. */
  get addresses(): string[] {
    return this.sockets.map((s) => formatAddress(s.address()));
  }

  close(): void {
    for (const s of this.sockets) s.close();
  }
}

/** One UDP socket on `host:port`; IPv6 sockets are IPv6 only, so the IPv4 wildcard can sit beside them. */
function bindUdp(host: string, port: number): Promise<Socket> {
  const socket = createSocket({ type: isIPv6(host) ? 'udp6' : 'udp4', ipv6Only: isIPv6(host) });
  return new Promise((resolve, reject) => {
    socket.once('error', (err) => {
      socket.close();
      reject(new DerpError('BAD_CONFIG', `cannot bind STUN ${host}:${port}: ${err.message}`, { cause: err }));
    });
    socket.bind(port, host, () => {
      socket.removeAllListeners('error');
      resolve(socket);
    });
  });
}

/**
 * Sends one Binding request and resolves with our mapped address and the round trip in ms.
 *
 * @example
 * const { ip, port, rttMs } = await stunQuery('127.0.0.1', 3478);
 */
export function stunQuery(
  host: string,
  port: number,
  timeoutMs = 2000,
): Promise<{ ip: string; port: number; rttMs: number }> {
  const socket = createSocket(isIPv6(host) ? 'udp6' : 'udp4');
  const tx = randomBytes(12);
  const start = performance.now();
  return new Promise((resolve, reject) => {
    const finish = (err?: DerpError, r?: { ip: string; port: number }): void => {
      clearTimeout(timer);
      socket.close();
      if (err) reject(err);
      else resolve({ ...r!, rttMs: performance.now() - start });
    };
    const timer = setTimeout(
      () => finish(new DerpError('TIMEOUT', `no STUN answer from ${host}:${port} in ${timeoutMs} ms`)),
      timeoutMs,
    );
    socket.on('error', (err) =>
      finish(new DerpError('CONNECT', `STUN ${host}:${port}: ${err.message}`, { cause: err })),
    );
    socket.on('message', (msg: Buffer) => {
      try {
        const r = parseStunResponse(msg);
        if (Buffer.compare(r.txId, tx) === 0) finish(undefined, r);
      } catch (err) {
        if (!(err instanceof DerpError)) throw err;
        // Not our response: keep waiting until the deadline.
      }
    });
    socket.send(stunRequest(tx), port, host);
  });
}
