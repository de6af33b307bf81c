/**
 * `quackscale/testing`: an in-memory network for tests (no sockets, no root, any OS) with links
 * that lose, delay, reorder and cap datagrams and NAT routers that map endpoint-independently or
 * per destination, all decided from a seed; a STUN server and a DERP relay on it; and
 * {@link createTestMesh}, nodes running our real magicsock, WireGuard and IP stack across it; and
 * {@link createTestTailnet}, whole Tailnet nodes logged in to our control server across it.
 */
export { MemoryDerp, memoryConnPair } from './derp.js';
export { createTestMesh, type TestMesh, type TestNode, type TestNodeSpec } from './mesh.js';
export { Nat, type NatKind } from './network/nat.js';
export {
  type DeliveryRecord,
  type HostOptions,
  type NatOptions,
  type Verdict,
  VirtualNetwork,
} from './network/network.js';
export { checkShape, type LinkShape, TestNetworkError } from './network/shape.js';
export { VirtualUdpSocket } from './network/udp.js';
export { serveStun } from './stun.js';
export { createTestTailnet, type TestTailnet } from './tailnet.js';
