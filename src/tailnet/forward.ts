/**
 * Port forwarding between loopback and the tailnet, as `tailscale serve --tcp` (tailnet → a
 * local port) and a local listener that dials a peer (local port → tailnet) do it. Each
 * connection is a {@link splice}; its byte counts are logged when it ends.
 */
import net from 'node:net';
import type { Duplex } from 'node:stream';
import { splice } from '../netstack/splice.js';
import type { Logger } from '../wireguard/logger.js';

/** Carries one accepted tailnet connection to `127.0.0.1:localPort`. */
export function relayToLocal(conn: Duplex, port: number, localPort: number, log: Logger): void {
  const local = net.connect(localPort, '127.0.0.1');
  splice(conn, local, (r) =>
    log.debug(`serve ${port}→${localPort}: ${r.aToB}/${r.bToA} bytes${r.error ? ` (${r.error})` : ''}`),
  );
}

/** A running forward: its listener, and a close that also ends the connections it carries. */
export interface Forward {
  server: net.Server;
  /** Stops listening and destroys every open connection (net.Server.close alone waits for them). */
  close(): Promise<void>;
}

/**
 * Listens on `127.0.0.1:localPort` (0: any) and carries each connection to `target` through
 * `dial`. Incoming bytes wait (paused) until the dial succeeds; a failed dial closes the
 * local connection.
 */
export async function listenForward(
  localPort: number,
  target: string,
  dial: () => Promise<Duplex>,
  log: Logger,
): Promise<Forward> {
  const open = new Set<net.Socket>();
  const server = net.createServer((local) => {
    open.add(local);
    local.once('close', () => open.delete(local));
    local.pause();
    dial().then(
      (remote) => {
        splice(local, remote, (r) => log.debug(`forward ${localPort}→${target}: ${r.aToB}/${r.bToA} bytes`));
        local.resume();
      },
      (err: Error) => {
        log.warn(`forward ${localPort}→${target}: ${err.message}`);
        local.destroy();
      },
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(localPort, '127.0.0.1', () => resolve());
  });
  return {
    server,
    close: () => {
      for (const s of open) s.destroy();
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
