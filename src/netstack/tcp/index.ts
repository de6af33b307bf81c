/** TCP over the userspace stack: the engine ({@link TcpEndpoint}) and Node-style sockets on top. */

export type { CongestionName } from './congestion.js';
export type { ConnectionEvents, TcpConnection, TcpState } from './connection.js';
export { type Listener, TcpEndpoint, type TcpStats } from './endpoint.js';
export { SocketError, type SocketErrorCode } from './errors.js';
export type { TcpOptions } from './options.js';
export { TcpServer, type TcpServerOptions } from './server.js';
export { type SocketAddressInfo, type TcpConnectOptions, TcpSocket, tcpConnect } from './socket.js';
