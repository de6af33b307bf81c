/** node:net in the browser bundle: address helpers only; a page has no sockets of its own. */
const V4 = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;

export function isIPv4(s: string): boolean {
  return V4.test(s);
}

export function isIPv6(s: string): boolean {
  if (!s.includes(':') || /[^0-9a-fA-F:.%]/.test(s.split('%')[0]!)) return false;
  try {
    new URL(`http://[${s.split('%')[0]}]/`);
    return true;
  } catch {
    return false;
  }
}

export function isIP(s: string): 0 | 4 | 6 {
  return isIPv4(s) ? 4 : isIPv6(s) ? 6 : 0;
}

function unavailable(): never {
  throw new Error('node:net is not available in a web page: use tn.dial() and tn.listen()');
}
export const createServer = unavailable;
export const connect = unavailable;
export const createConnection = unavailable;
export class Socket {
  constructor() {
    unavailable();
  }
}
export class Server {
  constructor() {
    unavailable();
  }
}
export default { isIP, isIPv4, isIPv6, createServer, connect, createConnection, Socket, Server };
