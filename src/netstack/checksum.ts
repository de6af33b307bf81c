/**
 * The Internet checksum (RFC 1071): the 16-bit one's complement of the one's complement sum
 * of the data taken as big-endian 16-bit words.
 *
 * Running sums are plain numbers (folded or not, below 2^53), so a caller can sum a
 * pseudo-header, a header and a payload that live in different buffers and finish once.
 * Every segment except the last must have an even length: RFC 1071 §2(A) sums are byte-order
 * independent only at 16-bit alignment.
 */

/** Folds carries back into the low 16 bits (end-around carry, RFC 1071 §2(C)). */
export function foldSum(sum: number): number {
  let s = sum;
  // Division rather than `>>>`, so sums of any size up to 2^53 fold exactly.
  while (s > 0xffff) s = (s % 0x10000) + Math.floor(s / 0x10000);
  return s;
}

/**
 * Adds `length` bytes of `buf` from `offset` to a running one's complement sum and returns the
 * folded 16-bit sum. An odd final byte is padded with a zero low byte (RFC 1071 §4.1).
 */
export function sumBytes(buf: Uint8Array, offset: number, length: number, initial = 0): number {
  // Deferred carries (RFC 1071 §2(C)) taken to the limit: high and low bytes of every word are
  // summed apart and combined once, so the loop is plain byte additions with no shifts.
  let hi = 0;
  let lo = 0;
  let i = offset;
  const end = offset + length;
  const evenEnd = end - (length & 1);
  const unrolledEnd = evenEnd - ((evenEnd - i) & 7);
  while (i < unrolledEnd) {
    hi += buf[i]! + buf[i + 2]! + buf[i + 4]! + buf[i + 6]!;
    lo += buf[i + 1]! + buf[i + 3]! + buf[i + 5]! + buf[i + 7]!;
    i += 8;
  }
  while (i < evenEnd) {
    hi += buf[i]!;
    lo += buf[i + 1]!;
    i += 2;
  }
  if (length & 1) hi += buf[end - 1]!;
  return foldSum(hi * 0x100 + lo + initial);
}

/** Turns a running sum into the checksum field value: the one's complement of the folded sum. */
export function finishChecksum(sum: number): number {
  return ~foldSum(sum) & 0xffff;
}

/** The Internet checksum of `length` bytes of `buf` from `offset`, continuing a running sum. */
export function internetChecksum(buf: Uint8Array, offset: number, length: number, initial = 0): number {
  return finishChecksum(sumBytes(buf, offset, length, initial));
}

/**
 * Completes an offloaded checksum (CHECKSUM_PARTIAL, see PacketLink.txChecksumOffload): the
 * 16-bit field at `field` holds the pseudo-header sum, and becomes the checksum of the bytes from
 * `start` to the end of `packet`. Zero is written as 0xffff (RFC 768; the same value for TCP,
 * RFC 1624 §3), as links that offload do.
 */
export function completeChecksum(packet: Uint8Array, start: number, field: number): void {
  const c = finishChecksum(sumBytes(packet, start, packet.length - start)) || 0xffff;
  packet[field] = c >>> 8;
  packet[field + 1] = c & 0xff;
}

/**
 * Updates a checksum for one 16-bit field changing from `oldWord` to `newWord` without
 * re-summing the data: HC' = ~(~HC + ~m + m') (RFC 1624 §3, eqn. 3).
 */
export function updateChecksum(checksum: number, oldWord: number, newWord: number): number {
  return ~foldSum((~checksum & 0xffff) + (~oldWord & 0xffff) + (newWord & 0xffff)) & 0xffff;
}

/**
 * The one's complement sum of a TCP/UDP/ICMPv6 pseudo-header, read in place from the packet
 * (or any buffers) holding the addresses. `addressLength` selects the layout:
 * - 4: source, destination, zero, protocol, 16-bit upper-layer length (RFC 768; RFC 793 §3.1);
 * - 16: source, destination, 32-bit upper-layer length, three zero bytes, next header
 *   (RFC 8200 §8.1).
 * Both reduce to the same word sum; the 32-bit length only adds a high word for IPv6.
 */
export function pseudoHeaderSum(
  src: Uint8Array,
  srcOffset: number,
  dst: Uint8Array,
  dstOffset: number,
  addressLength: 4 | 16,
  protocol: number,
  upperLength: number,
): number {
  let sum = sumBytes(src, srcOffset, addressLength, 0);
  sum = sumBytes(dst, dstOffset, addressLength, sum);
  sum += (protocol & 0xff) + (upperLength & 0xffff) + ((upperLength >>> 16) & 0xffff);
  return foldSum(sum);
}

/** {@link pseudoHeaderSum} for two 4-byte IPv4 addresses (RFC 768, RFC 793 §3.1). */
export function pseudoHeaderSumV4(
  src: Uint8Array,
  dst: Uint8Array,
  protocol: number,
  length: number,
): number {
  return pseudoHeaderSum(src, 0, dst, 0, 4, protocol, length);
}

/** {@link pseudoHeaderSum} for two 16-byte IPv6 addresses (RFC 8200 §8.1). */
export function pseudoHeaderSumV6(
  src: Uint8Array,
  dst: Uint8Array,
  nextHeader: number,
  length: number,
): number {
  return pseudoHeaderSum(src, 0, dst, 0, 16, nextHeader, length);
}
