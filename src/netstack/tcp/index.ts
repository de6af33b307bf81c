/** TCP over the userspace stack: the engine ({@link TcpEndpoint}) and Node-style sockets on top. */

export type { CongestionName } from './congestion.js';
export type { ConnectionEvents, TcpConnection, TcpState } from './connection.js';
export { type Listener, TcpEndpoint, type TcpStats } from './endpoint.js';
export { LookupError, SocketError, type SocketErrorCode } from './errors.js';
export type { TcpOptions } from './options.js';
export { TcpServer, type TcpServerOptions } from './server.js';
export {
  type ConnectArgs,
  type SocketAddressInfo,
  type TcpConnectOptions,
  TcpSocket,
  type TcpSocketConnectOptions,
  type TcpSocketOptions,
  tcpConnect,
} from './socket.js';
