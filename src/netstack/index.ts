/** The userspace IP stack: addresses, checksums, IPv4/IPv6, ICMP echo and the {@link Stack}. */
export * from './address.js';
export * from './checksum.js';
export * from './echo.js';
export * from './errors.js';
export * from './icmp.js';
export * from './icmp-error.js';
export * from './ipv4.js';
export * from './ipv6.js';
export * from './link.js';
export * from './packet.js';
export * from './stack.js';
export * from './tcp/index.js';
export * from './udp.js';
