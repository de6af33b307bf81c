/**
 * TSMP, the "Tailscale Message Protocol" (net/packet/tsmp.go): IP protocol 99 between two
 * nodes, inside WireGuard, never seen by either host's own IP stack. The payload after the IP
 * header starts with a type byte:
 * - `p` ping: 8 opaque bytes that the pong copies back;
 * - `o` pong: those 8 bytes, then (optionally) the answering node's peerapi port, big endian;
 * - `!` rejected connection: the flow's IP protocol, a reason byte, the flow's source port and
 *   destination port (big endian; the addresses are the IP header's, swapped), and optionally a
 *   flags byte whose bit 0 ("maybe broken") makes the rejection advisory, not final;
 * - `a` disco key advertisement (32 bytes; sent only to peers of capability version ≥ 144,
 *   above the one we claim, so we only recognise it).
 * These builders and parsers work on the payload only; the stack writes the IP header.
 */

/** ipproto.TSMP. */
export const TSMP_PROTOCOL = 99;

/** TSMPType bytes. */
export const TsmpType = {
  REJECTED_CONN: 0x21, // '!'
  PING: 0x70, // 'p'
  PONG: 0x6f, // 'o'
  DISCO_ADVERTISEMENT: 0x61, // 'a'
} as const;

/** TailscaleRejectReason bytes, with the names tsmp.go's String gives them. */
export const REJECT_REASONS = {
  acl: 0x41, // 'A'
  shields: 0x53, // 'S'
  'host-ip-forwarding-unavailable': 0x46, // 'F'
  'host-firewall': 0x57, // 'W'
  'app-connector-transit-ip-unknown': 0x54, // 'T'
} as const;
export type RejectReason = keyof typeof REJECT_REASONS;

const PING_LENGTH = 9;
const PONG_LENGTH = 11;
/** tsmp.go minTSMPSize: the shortest rejection body. */
const REJECT_LENGTH = 7;
const DISCO_ADVERTISEMENT_LENGTH = 33;
const FLAG_MAYBE_BROKEN = 0x1;

/** A rejected flow, as the rejecting node describes it (TailscaleRejectedHeader). */
export interface TsmpReject {
  type: 'reject';
  /** The rejected flow's IP protocol (6 for TCP). */
  protocol: number;
  /** The reason's name, or `0x..` for a byte this version does not know. */
  reason: RejectReason | `0x${string}`;
  /** The flow's source port (on the node the rejection is sent to) and destination port. */
  srcPort: number;
  dstPort: number;
  /** Advisory only: the rejecter is not sure the flow is broken (tsmp.go MaybeBroken). */
  maybeBroken: boolean;
}

/** A parsed TSMP payload. */
export type TsmpMessage =
  | { type: 'ping'; data: Uint8Array }
  | { type: 'pong'; data: Uint8Array; peerAPIPort: number }
  | TsmpReject
  | { type: 'disco-advertisement'; discoKey: Uint8Array };

function reasonName(byte: number): TsmpReject['reason'] {
  for (const [name, b] of Object.entries(REJECT_REASONS)) if (b === byte) return name as RejectReason;
  return `0x${byte.toString(16).padStart(2, '0')}`;
}

/**
 * Parses a TSMP payload (the bytes after the IP header), or returns undefined for an unknown
 * type or one too short for its type, which tailscaled ignores the same way.
 *
 * @example
 * const msg = parseTsmp(pkt.buf.subarray(pkt.payloadOffset, pkt.payloadOffset + pkt.payloadLength));
 * if (msg?.type === 'ping') reply(buildTsmpPong(msg.data));
 */
export function parseTsmp(p: Uint8Array): TsmpMessage | undefined {
  switch (p[0]) {
    case TsmpType.PING:
      return p.length >= PING_LENGTH ? { type: 'ping', data: p.slice(1, PING_LENGTH) } : undefined;
    case TsmpType.PONG:
      if (p.length < PING_LENGTH) return undefined;
      return {
        type: 'pong',
        data: p.slice(1, PING_LENGTH),
        peerAPIPort: p.length >= PONG_LENGTH ? (p[9]! << 8) | p[10]! : 0,
      };
    case TsmpType.REJECTED_CONN:
      if (p.length < REJECT_LENGTH) return undefined;
      return {
        type: 'reject',
        protocol: p[1]!,
        reason: reasonName(p[2]!),
        srcPort: (p[3]! << 8) | p[4]!,
        dstPort: (p[5]! << 8) | p[6]!,
        maybeBroken: p.length > REJECT_LENGTH && (p[7]! & FLAG_MAYBE_BROKEN) !== 0,
      };
    case TsmpType.DISCO_ADVERTISEMENT:
      return p.length >= DISCO_ADVERTISEMENT_LENGTH
        ? { type: 'disco-advertisement', discoKey: p.slice(1, DISCO_ADVERTISEMENT_LENGTH) }
        : undefined;
    default:
      return undefined;
  }
}

/**
 * A ping payload carrying 8 bytes of `data`.
 *
 * @example
 * stack.sendIp(peer, TSMP_PROTOCOL, buildTsmpPing(randomBytes(8)));
 */
export function buildTsmpPing(data: Uint8Array): Uint8Array {
  const out = new Uint8Array(PING_LENGTH);
  out[0] = TsmpType.PING;
  out.set(data.subarray(0, 8), 1);
  return out;
}

/**
 * The pong answering a ping's `data`; `peerAPIPort` 0 says the node has no peerapi (we have none).
 *
 * @example
 * stack.sendIp(from, TSMP_PROTOCOL, buildTsmpPong(ping.data), { src: to });
 */
export function buildTsmpPong(data: Uint8Array, peerAPIPort = 0): Uint8Array {
  const out = new Uint8Array(PONG_LENGTH);
  out[0] = TsmpType.PONG;
  out.set(data.subarray(0, 8), 1);
  out[9] = peerAPIPort >>> 8;
  out[10] = peerAPIPort & 0xff;
  return out;
}

/**
 * A rejection of the flow `srcPort` → `dstPort` of `protocol`, sent back to the flow's source
 * (the IP header goes from the flow's destination to its source). The flags byte is written
 * only when a flag is set, as tsmp.go Marshal does.
 *
 * @example
 * stack.sendIp(synSource, TSMP_PROTOCOL, buildTsmpReject({ protocol: 6, reason: 'acl', srcPort, dstPort }),
 *   { src: synDestination });
 */
export function buildTsmpReject(
  r: Omit<TsmpReject, 'type' | 'maybeBroken' | 'reason'> & {
    reason: RejectReason;
    maybeBroken?: boolean;
  },
): Uint8Array {
  const out = new Uint8Array(r.maybeBroken ? REJECT_LENGTH + 1 : REJECT_LENGTH);
  out[0] = TsmpType.REJECTED_CONN;
  out[1] = r.protocol;
  out[2] = REJECT_REASONS[r.reason];
  out[3] = r.srcPort >>> 8;
  out[4] = r.srcPort & 0xff;
  out[5] = r.dstPort >>> 8;
  out[6] = r.dstPort & 0xff;
  if (r.maybeBroken) out[7] = FLAG_MAYBE_BROKEN;
  return out;
}
