/**
 * node:dgram in the browser bundle. A web page has no UDP: a socket here "binds" (so the node's
 * Bind opens), has no IPv6, receives nothing and fails every send, which magicsock counts. With
 * no UDP endpoints advertised and DERP-only paths, nothing is meant to be sent on it.
 */
import { EventEmitter } from 'node:events';

class NoUdpSocket extends EventEmitter {
  constructor(readonly type: string) {
    super();
  }
  bind(_opts: unknown, cb?: () => void): this {
    queueMicrotask(() => {
      if (this.type === 'udp6') {
        this.emit('error', Object.assign(new Error('no UDP in a web page'), { code: 'EAFNOSUPPORT' }));
        return;
      }
      cb?.();
      this.emit('listening');
    });
    return this;
  }
  address() {
    return { address: '0.0.0.0', family: 'IPv4', port: 0 };
  }
  send(...args: unknown[]): void {
    const cb = args.at(-1);
    const err = Object.assign(new Error('no UDP in a web page'), { code: 'ENETUNREACH' });
    if (typeof cb === 'function') queueMicrotask(() => cb(err));
  }
  setRecvBufferSize(): void {}
  setSendBufferSize(): void {}
  ref(): this {
    return this;
  }
  unref(): this {
    return this;
  }
  close(cb?: () => void): void {
    queueMicrotask(() => {
      cb?.();
      this.emit('close');
    });
  }
}

export function createSocket(opts: string | { type: string }): NoUdpSocket {
  return new NoUdpSocket(typeof opts === 'string' ? opts : opts.type);
}
export default { createSocket };
