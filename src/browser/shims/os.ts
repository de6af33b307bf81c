/** node:os in the browser bundle: what the layers read, answered for a web page. */
export const endianness = (): 'LE' | 'BE' =>
  new Uint8Array(new Uint16Array([1]).buffer)[0] === 1 ? 'LE' : 'BE';
export const hostname = (): string => 'browser';
export const arch = (): string => 'wasm';
export const release = (): string => '';
export const platform = (): string => 'js';
export const tmpdir = (): string => '/tmp';
/** A page sees no network interfaces: it advertises no direct endpoints. */
export const networkInterfaces = (): Record<string, never> => ({});
/** Linux's errno numbers, for the errors netstack raises in node:net's shape. */
export const constants = {
  errno: {
    ECONNREFUSED: 111,
    ECONNRESET: 104,
    ETIMEDOUT: 110,
    EHOSTUNREACH: 113,
    ENETUNREACH: 101,
    EADDRINUSE: 98,
    EADDRNOTAVAIL: 99,
    EPIPE: 32,
    ECONNABORTED: 103,
    EINVAL: 22,
    ENOTCONN: 107,
    EMSGSIZE: 90,
  } as Record<string, number>,
};
export default { endianness, hostname, arch, release, platform, tmpdir, networkInterfaces, constants };
