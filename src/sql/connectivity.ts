// The connectivity functions of sql-surface.md: tailscale_serve_local, tailscale_ping,
// tailscale_quack_forward, and tailscale_peers. The listeners they open live in the worker and
// close with tailscale_down.
import {
  BIGINT,
  BOOLEAN,
  type DuckDBConnection,
  INTEGER,
  LIST,
  listValue,
  TIMESTAMP,
  timestampValue,
  VARCHAR,
} from '@duckdb/node-api';
import type { PeerRow } from './protocol.js';
import type { NodeSession } from './session.js';
import { intArg, portArg, registerRows, registerWithMacro, requiredString } from './table.js';

/** The Quack remote protocol's port, and the forwarder's loopback port (sql-surface.md). */
export const QUACK_PORT = 9494;
export const FORWARD_PORT = 19494;

interface ServeRow {
  listenPort: number;
  localPort: number;
}

interface PingRow {
  host: string;
  port: number;
}

interface ForwardRow {
  host: string;
  port: number;
  localPort: number;
}

/** Registers the connectivity functions on `connection`. */
export async function registerConnectivity(
  connection: DuckDBConnection,
  session: NodeSession,
): Promise<void> {
  await registerWithMacro<ServeRow>(
    connection,
    'tailscale_serve_local',
    [
      { name: 'listen_port', type: INTEGER, value: (r) => r.listenPort },
      { name: 'local_port', type: INTEGER, value: (r) => r.localPort },
      { name: 'local_forward', type: VARCHAR, value: (r) => `127.0.0.1:${r.localPort}` },
    ],
    { port: BIGINT, local_port: BIGINT },
    (bind) => {
      const listenPort = portArg(bind, 'port', QUACK_PORT);
      const localPort = portArg(bind, 'local_port', listenPort);
      session.serveLocal(listenPort, localPort);
      return [{ listenPort, localPort }];
    },
  );

  await registerWithMacro<PingRow>(
    connection,
    'tailscale_ping',
    [
      { name: 'host', type: VARCHAR, value: (r) => r.host },
      { name: 'port', type: INTEGER, value: (r) => r.port },
      // A failed dial is an error, so a row always says true (as the original's).
      { name: 'reachable', type: BOOLEAN, value: () => true },
    ],
    { host: VARCHAR, port: BIGINT, timeout_ms: BIGINT },
    (bind) => {
      const host = requiredString(bind, 'host', "tailscale_ping(host => 'peer')");
      const port = portArg(bind, 'port', QUACK_PORT);
      // Positive; at most a day, which bounds the SQL thread's wait rather than the dial.
      const timeoutMs = intArg(bind, 'timeout_ms', 5000, 1, 86_400_000);
      session.ping(host, port, timeoutMs);
      return [{ host, port }];
    },
  );

  await registerWithMacro<ForwardRow>(
    connection,
    'tailscale_quack_forward',
    [
      { name: 'active', type: BOOLEAN, value: () => true },
      { name: 'remote_host', type: VARCHAR, value: (r) => r.host },
      { name: 'remote_port', type: INTEGER, value: (r) => r.port },
      { name: 'local_port', type: INTEGER, value: (r) => r.localPort },
      { name: 'quack_uri', type: VARCHAR, value: (r) => `quack:127.0.0.1:${r.localPort}` },
    ],
    { host: VARCHAR, port: BIGINT, local_port: BIGINT },
    (bind) => {
      const host = requiredString(bind, 'host', "tailscale_quack_forward(host => 'peer')");
      const port = portArg(bind, 'port', QUACK_PORT);
      const localPort = portArg(bind, 'local_port', FORWARD_PORT, true);
      return [{ host, port, localPort: session.forward(host, port, localPort) }];
    },
  );

  registerRows<PeerRow>(
    connection,
    'tailscale_peers',
    [
      { name: 'name', type: VARCHAR, value: (p) => p.name },
      { name: 'dns_name', type: VARCHAR, value: (p) => p.dnsName },
      { name: 'tailnet_ips', type: LIST(VARCHAR), value: (p) => listValue(p.tailnetIps) },
      { name: 'online', type: BOOLEAN, value: (p) => p.online },
      { name: 'path', type: VARCHAR, value: (p) => p.path },
      {
        name: 'last_handshake',
        type: TIMESTAMP,
        value: (p) =>
          p.lastHandshakeMs === null ? null : timestampValue(BigInt(Math.round(p.lastHandshakeMs * 1000))),
      },
      { name: 'rx_bytes', type: BIGINT, value: (p) => BigInt(p.rxBytes) },
      { name: 'tx_bytes', type: BIGINT, value: (p) => BigInt(p.txBytes) },
    ],
    {},
    () => session.peers(),
  );
}
