import type { IpPacket } from '../packet.js';
import { setTcpChecksum, TcpFlag, type TcpSegment, writeTcpHeader } from './segment.js';
import { seqAdd } from './seq.js';

/**
 * The RST answering a segment that belongs to no connection (RFC 9293 §3.10.7.1): with the
 * segment's ACK as our sequence number if it had one, else acknowledging everything it occupied,
 * so that the sender accepts it. Returns the packet (room left for the IP header) and addresses.
 */
export function buildReset(
  pkt: IpPacket,
  seg: TcpSegment,
): { packet: Uint8Array; src: Uint8Array; dst: Uint8Array } {
  const ipLen = pkt.addressLength === 4 ? 20 : 40;
  const packet = new Uint8Array(ipLen + 20);
  const ack = (seg.flags & TcpFlag.ACK) !== 0;
  writeTcpHeader(packet, ipLen, {
    srcPort: seg.dstPort,
    dstPort: seg.srcPort,
    seq: ack ? seg.ack : 0,
    ack: ack ? 0 : seqAdd(seg.seq, seg.seqLength),
    flags: ack ? TcpFlag.RST : TcpFlag.RST | TcpFlag.ACK,
    window: 0,
  });
  const src = pkt.buf.slice(pkt.dstOffset, pkt.dstOffset + pkt.addressLength);
  const dst = pkt.buf.slice(pkt.srcOffset, pkt.srcOffset + pkt.addressLength);
  let sum = 0;
  for (let i = 0; i < src.length; i += 2)
    sum += ((src[i]! << 8) | src[i + 1]!) + ((dst[i]! << 8) | dst[i + 1]!);
  setTcpChecksum(packet, ipLen, 20, sum);
  return { packet, src, dst };
}
