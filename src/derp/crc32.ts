/** CRC-32 (IEEE 802.3, zlib's), for the STUN FINGERPRINT attribute (RFC 5389 §15.5). */

const TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

/**
 * The CRC-32 of `b`, as zlib's crc32 and Go's crc32.ChecksumIEEE.
 *
 * @example
 * zlib(Buffer.from('123456789')) === 0xcbf43926;
 */
export function zlib(b: Uint8Array): number {
  let c = 0xffffffff;
  for (let i = 0; i < b.length; i++) c = TABLE[(c ^ b[i]!) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}
