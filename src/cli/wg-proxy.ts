/**
 * `quackscale wg forward` and `quackscale wg expose`: TCP port forwarding through a plain
 * WireGuard peer, in the manner of onetun and wireproxy. `forward` carries connections to a
 * local port into the tunnel; `expose` carries connections to a port on our tunnel address out
 * to a local service. Every connection is logged when it opens and closes, with its byte counts.
 */
import net from 'node:net';
import { formatIp } from '../netstack/address.js';
import { splice } from '../netstack/splice.js';
import { Stack } from '../netstack/stack.js';
import { TcpEndpoint } from '../netstack/tcp/endpoint.js';
import { TcpServer } from '../netstack/tcp/server.js';
import { type TcpSocket, tcpConnect } from '../netstack/tcp/socket.js';
import { readConfig, type WgConfig } from '../wireguard/config.js';
import type { Device } from '../wireguard/device.js';
import { WireGuardError } from '../wireguard/errors.js';
import type { Logger } from '../wireguard/logger.js';
import { openDevice } from '../wireguard/open.js';
import { parseCommand } from './command.js';
import { cliLogger, UsageError, waitForSignal } from './log.js';
import { WG_EXPOSE, WG_FORWARD } from './spec/wg.js';

/** A host and port parsed from `HOST:PORT` or `[V6]:PORT`. */
interface HostPort {
  host: string;
  port: number;
}

function parseHostPort(text: string, flag: string): HostPort {
  const m = /^\[([^\]]+)\]:(\d+)$/.exec(text) ?? /^([^:]+):(\d+)$/.exec(text);
  const port = m ? Number(m[2]) : Number.NaN;
  if (!m || !Number.isInteger(port) || port < 1 || port > 65535) {
    throw new UsageError(`${flag} wants HOST:PORT (or [IPv6]:PORT), got '${text}'`);
  }
  return { host: m[1]!, port };
}

function parsePort(text: string, flag: string): number {
  const port = Number(text);
  if (!/^\d+$/.test(text) || port < 1 || port > 65535)
    throw new UsageError(`${flag} wants a port, got '${text}'`);
  return port;
}

/** The tunnel: device, stack and TCP, from a wg-quick file. */
interface Tunnel {
  device: Device;
  stack: Stack;
  tcp: TcpEndpoint;
  log: Logger;
  close(): Promise<void>;
}

async function openTunnel(path: string, verbose: boolean): Promise<Tunnel> {
  let config: WgConfig;
  try {
    config = await readConfig(path);
  } catch (err) {
    if (err instanceof WireGuardError) throw new UsageError(err.message);
    throw err;
  }
  const log = cliLogger(verbose);
  for (const w of config.warnings) log.warn(w);
  if (config.interface.addresses.length === 0) {
    throw new UsageError(`${path}: [Interface] has no Address; TCP through the tunnel needs one`);
  }
  const { device, bind } = await openDevice(config, { logger: log });
  const stack = new Stack(device, {
    addresses: config.interface.addresses.map((a) => `${a.address}/${a.prefix}`),
  });
  const tcp = new TcpEndpoint(stack);
  device.on('handshake', (e: { peer: string; endpoint: string | undefined }) =>
    log.info(`handshake with peer ${e.peer} at ${e.endpoint ?? '?'}`),
  );
  log.info(
    `interface up: UDP ${bind.port}, addresses ${stack.addresses.map((a) => formatIp(a.address)).join(', ')}`,
  );
  return {
    device,
    stack,
    tcp,
    log,
    async close() {
      tcp.close();
      stack.close();
      await device.close();
    },
  };
}

/** Joins two sockets both ways (half-close, errors tear down both) and logs the close with byte counts. */
function relay(
  id: number,
  label: string,
  a: net.Socket | TcpSocket,
  b: net.Socket | TcpSocket,
  log: Logger,
): () => void {
  return splice(a, b, (r) =>
    log.info(
      `#${id} close ${label}: ${r.aToB} bytes out, ${r.bToA} bytes back${r.error ? ` (${r.error})` : ''}`,
    ),
  );
}

/** `wg forward`: local TCP ports whose connections are carried to ADDR:PORT inside the tunnel. */
export async function wgForward(argv: string[]): Promise<number> {
  const args = parseCommand(WG_FORWARD, argv);
  if (!args) return 0;
  const { values } = args;
  const locals = (values.local ?? []).map((t) => parseHostPort(t, '--local'));
  const remotes = (values.remote ?? []).map((t) => parseHostPort(t, '--remote'));
  if (locals.length === 0 || locals.length !== remotes.length) {
    throw new UsageError('wg forward needs one --remote per --local');
  }
  const t = await openTunnel(values.config, values.verbose ?? false);
  const servers: net.Server[] = [];
  const open = new Set<() => void>();
  let next = 0;
  try {
    for (const [i, local] of locals.entries()) {
      const remote = remotes[i]!;
      const server = net.createServer({ allowHalfOpen: true }, (client) => {
        const id = ++next;
        const label = `${client.remoteAddress}:${client.remotePort} -> ${remote.host}:${remote.port}`;
        t.log.info(`#${id} open ${label}`);
        let tunnel: TcpSocket;
        try {
          tunnel = tcpConnect(t.tcp, { host: remote.host, port: remote.port, allowHalfOpen: true });
        } catch (err) {
          t.log.warn(`#${id} cannot connect ${label}: ${err instanceof Error ? err.message : String(err)}`);
          client.destroy();
          return;
        }
        const kill = relay(id, label, client, tunnel, t.log);
        open.add(kill);
        client.once('close', () => open.delete(kill));
      });
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(local.port, local.host, () => resolve());
      });
      servers.push(server);
      t.log.info(`forwarding ${local.host}:${local.port} -> ${remote.host}:${remote.port}`);
    }
    await waitForSignal();
    t.log.info(`shutting down (${open.size} open connections)`);
  } finally {
    for (const s of servers) s.close();
    for (const kill of open) kill();
    await t.close();
  }
  return 0;
}

/** `wg expose`: ports on our tunnel address whose connections are carried to local services. */
export async function wgExpose(argv: string[]): Promise<number> {
  const args = parseCommand(WG_EXPOSE, argv);
  if (!args) return 0;
  const { values } = args;
  const ports = (values.port ?? []).map((p) => parsePort(p, '--port'));
  const targets = (values.to ?? []).map((x) => parseHostPort(x, '--to'));
  if (ports.length === 0 || ports.length !== targets.length) {
    throw new UsageError('wg expose needs one --to per --port');
  }
  const t = await openTunnel(values.config, values.verbose ?? false);
  const servers: TcpServer[] = [];
  const open = new Set<() => void>();
  let next = 0;
  try {
    for (const [i, port] of ports.entries()) {
      const target = targets[i]!;
      const server = new TcpServer(t.tcp, { allowHalfOpen: true }, (peer) => {
        const id = ++next;
        const label = `${peer.remoteAddress}:${peer.remotePort} -> ${target.host}:${target.port}`;
        t.log.info(`#${id} open ${label}`);
        const local = net.connect({ host: target.host, port: target.port, allowHalfOpen: true });
        const kill = relay(id, label, peer, local, t.log);
        open.add(kill);
        peer.once('close', () => open.delete(kill));
      });
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(port, () => resolve());
      });
      servers.push(server);
      t.log.info(`exposing tunnel port ${port} -> ${target.host}:${target.port}`);
    }
    await waitForSignal();
    t.log.info(`shutting down (${open.size} open connections)`);
  } finally {
    for (const s of servers) s.close();
    for (const kill of open) kill();
    await t.close();
  }
  return 0;
}
