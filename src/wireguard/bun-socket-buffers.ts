/**
 * Socket buffer sizes for {@link BunUdpBind}'s socket. Bun's `udpSocket` has no
 * setRecvBufferSize, and the kernel's default receive queue (net.core.rmem_default, 208 KiB on
 * Linux) holds only about a hundred full-size datagrams: a burst beyond that is dropped, and the
 * tunnel's TCP pays a loss episode for it. node:dgram's bind asks for 4 MiB
 * (wireguard/udp-bind.ts), wireguard-go and tailscaled for more; here the same is asked through
 * setsockopt(2) from libc via `bun:ffi` (Linux only: other systems number the options
 * differently). Bun is not a dependency: its FFI module is loaded by name at run time.
 */

/** The part of `bun:ffi` used here. */
interface BunFfi {
  dlopen(
    path: string,
    symbols: { setsockopt: { args: string[]; returns: string } },
  ): {
    symbols: { setsockopt(fd: number, level: number, name: number, value: unknown, len: number): number };
  };
  ptr(view: ArrayBufferView): unknown;
}

/** Linux's <asm-generic/socket.h>. */
const SOL_SOCKET = 1;
const SO_SNDBUF = 7;
const SO_RCVBUF = 8;

type SetSockOpt = (fd: number, name: number, bytes: number) => boolean;

/** Loaded once, on first use; binds opened together share the one load. */
let loading: Promise<SetSockOpt> | undefined;

async function load(): Promise<SetSockOpt> {
  if (process.platform !== 'linux') throw new Error(`socket buffer sizes are not set on ${process.platform}`);
  const name = 'bun:ffi';
  const ffi = (await import(/* @vite-ignore */ name)) as BunFfi;
  const lib = ffi.dlopen('libc.so.6', {
    setsockopt: { args: ['i32', 'i32', 'i32', 'ptr', 'u32'], returns: 'i32' },
  });
  const value = new Int32Array(1);
  return (fd, option, bytes) => {
    value[0] = bytes;
    return lib.symbols.setsockopt(fd, SOL_SOCKET, option, ffi.ptr(value), 4) === 0;
  };
}

/**
 * Asks for `bytes` of receive and send buffer on socket `fd` (Linux caps it silently at
 * net.core.[rw]mem_max). Resolves with an error for each request that failed, for the caller
 * to count; never rejects.
 */
export async function setBunSocketBuffers(fd: number, bytes: number): Promise<Error[]> {
  let set: SetSockOpt;
  try {
    loading ??= load();
    set = await loading;
  } catch (err) {
    // Not Linux, no bun:ffi, or no libc.so.6 (musl): the sizes stay the system's defaults.
    return [err instanceof Error ? err : new Error(String(err))];
  }
  const errors: Error[] = [];
  if (!set(fd, SO_RCVBUF, bytes)) errors.push(new Error('setsockopt(SO_RCVBUF) failed'));
  if (!set(fd, SO_SNDBUF, bytes)) errors.push(new Error('setsockopt(SO_SNDBUF) failed'));
  return errors;
}
