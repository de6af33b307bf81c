// A userspace UDP impairment relay: our WireGuard UdpBind talks to the relay, the relay talks to
// wireguard-go, and on the way it drops, delays and reorders datagrams with a seeded PRNG. This
// kernel has no sch_netem, so this stands in for `tc netem loss/delay/reorder`; the TCP at the
// far end is still the real Linux kernel's, only the path between the two WireGuard peers is
// impaired.
import dgram from 'node:dgram';
import { mulberry32 } from '../../../src/netstack/link.js';

export interface ImpairOptions {
  /** Probability a datagram is dropped, each direction. */
  loss?: number;
  /** Base one-way delay, ms. */
  delayMs?: number;
  /** Probability a datagram skips the delay (netem's reorder: sent at once, overtaking the rest). */
  reorder?: number;
  seed?: number;
}

export interface ImpairRelay {
  /** Where our side should send: the relay's address and port. */
  address: string;
  port: number;
  stats: { forwarded: number; dropped: number; reordered: number };
  close(): Promise<void>;
}

/**
 * Starts a relay on `bindHost` between whoever sends to it first (our bind) and `target`
 * (wireguard-go's endpoint). Datagrams from the target go back to the last client address seen.
 */
export async function startImpairRelay(
  bindHost: string,
  target: { host: string; port: number },
  opts: ImpairOptions,
): Promise<ImpairRelay> {
  const rng = mulberry32(opts.seed ?? 1);
  const sock = dgram.createSocket('udp4');
  await new Promise<void>((resolve, reject) => {
    sock.once('error', reject);
    sock.bind(0, bindHost, () => resolve());
  });
  const stats = { forwarded: 0, dropped: 0, reordered: 0 };
  let client: { address: string; port: number } | undefined;
  const timers = new Set<ReturnType<typeof setTimeout>>();
  const send = (msg: Buffer, port: number, host: string) => {
    sock.send(msg, port, host, (err) => {
      if (err && (err as NodeJS.ErrnoException).code !== 'ERR_SOCKET_DGRAM_NOT_RUNNING') throw err;
    });
  };
  sock.on('message', (msg, rinfo) => {
    const fromTarget = rinfo.address === target.host && rinfo.port === target.port;
    if (!fromTarget) client = { address: rinfo.address, port: rinfo.port };
    const to = fromTarget ? client : { address: target.host, port: target.port };
    if (!to) return;
    if (opts.loss && rng() < opts.loss) {
      stats.dropped++;
      return;
    }
    stats.forwarded++;
    const delay = opts.delayMs ?? 0;
    if (delay === 0 || (opts.reorder && rng() < opts.reorder)) {
      if (delay > 0) stats.reordered++;
      send(msg, to.port, to.address);
      return;
    }
    const t = setTimeout(() => {
      timers.delete(t);
      send(msg, to.port, to.address);
    }, delay);
    timers.add(t);
  });
  return {
    address: bindHost,
    port: sock.address().port,
    stats,
    close: () =>
      new Promise<void>((resolve) => {
        for (const t of timers) clearTimeout(t);
        sock.close(() => resolve());
      }),
  };
}
