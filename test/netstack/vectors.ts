/**
 * Packets captured from the Linux kernel on `lo` (AF_PACKET socket, Ethernet header removed)
 * while running `ping -c1 -s 8 -p 71756163 127.0.0.1` and the same against `::1`: real
 * requests from iputils ping and the kernel's own replies, to check our bytes against.
 */
export const KERNEL_V4_REQUEST = hex(
  '45000024 61024000 4001dbd4 7f000001 7f000001  0800 2161 03c5 0001 7175616300000000',
);
export const KERNEL_V4_REPLY = hex(
  '45000024 61030000 40011bd4 7f000001 7f000001  0000 2961 03c5 0001 7175616300000000',
);
export const KERNEL_V6_REQUEST = hex(
  '600b04fb 00103a40 00000000000000000000000000000001 00000000000000000000000000000001' +
    '  8000 a913 03c6 0001 7175616300000000',
);
export const KERNEL_V6_REPLY = hex(
  '600d6bae 00103a40 00000000000000000000000000000001 00000000000000000000000000000001' +
    '  8100 a813 03c6 0001 7175616300000000',
);

/** Decodes hex, ignoring whitespace. */
export function hex(text: string): Uint8Array {
  return new Uint8Array(Buffer.from(text.replace(/\s+/g, ''), 'hex'));
}

/** Encodes bytes as lower-case hex. */
export function toHex(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString('hex');
}
