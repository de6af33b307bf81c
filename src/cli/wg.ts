/**
 * `quackscale wg …`: a plain WireGuard peer in userspace (the WireGuard device and the
 * IP stack, no control plane), in the manner of wireguard-go plus ping(8).
 */
import { NetstackError } from '../netstack/errors.js';
import { Stack } from '../netstack/stack.js';
import { readConfig, type WgConfig } from '../wireguard/config.js';
import { WireGuardError } from '../wireguard/errors.js';
import { openDevice } from '../wireguard/open.js';
import { parseCommand } from './command.js';
import { cliLogger, UsageError, waitForSignal } from './log.js';
import { WG_PING, WG_UP } from './spec/wg.js';

async function loadConfig(path: string): Promise<WgConfig> {
  try {
    return await readConfig(path);
  } catch (err) {
    if (err instanceof WireGuardError) throw new UsageError(err.message);
    throw err;
  }
}

/** Device + stack from a config, with the config's warnings and handshakes logged. */
async function bringUp(configPath: string, verbose: boolean) {
  const config = await loadConfig(configPath);
  const log = cliLogger(verbose);
  for (const w of config.warnings) log.warn(w);
  if (config.interface.addresses.length === 0) {
    throw new UsageError(
      `${configPath}: [Interface] has no Address; the tunnel needs one to answer or send pings`,
    );
  }
  const { device, bind } = await openDevice(config, { logger: log });
  const stack = new Stack(device, {
    addresses: config.interface.addresses.map((a) => `${a.address}/${a.prefix}`),
  });
  device.on('handshake', (e: { peer: string; endpoint: string | undefined }) =>
    log.info(`handshake with peer ${e.peer} at ${e.endpoint ?? '?'}`),
  );
  return { device, stack, bind, log, config };
}

/** `quackscale wg up`: runs until SIGINT or SIGTERM. */
export async function wgUp(argv: string[]): Promise<number> {
  const args = parseCommand(WG_UP, argv);
  if (!args) return 0;
  const { values } = args;
  const { device, stack, bind, log, config } = await bringUp(values.config, values.verbose ?? false);
  const addrs = config.interface.addresses.map((a) => `${a.address}/${a.prefix}`).join(', ');
  log.info(
    `interface up: public key ${device.status().publicKey}, listening on UDP ${bind.port}, addresses ${addrs}`,
  );
  await waitForSignal();
  log.info('shutting down');
  stack.close();
  await device.close();
  return 0;
}

function positiveNumber(text: string | undefined, name: string, fallback: number): number {
  if (text === undefined) return fallback;
  const n = Number(text);
  if (!Number.isFinite(n) || n <= 0) throw new UsageError(`${name} must be a positive number, got '${text}'`);
  return n;
}

/** `quackscale wg ping`: exit 0 if any reply came, 1 if none. */
export async function wgPing(argv: string[]): Promise<number> {
  const args = parseCommand(WG_PING, argv);
  if (!args) return 0;
  const { values, positionals } = args;
  if (positionals.length !== 1) throw new UsageError('wg ping takes one ADDR');
  const target = positionals[0]!;
  const count = values.count === undefined ? Number.POSITIVE_INFINITY : positiveNumber(values.count, '-c', 1);
  const intervalMs = positiveNumber(values.interval, '-i', 1) * 1000;
  const timeoutMs = positiveNumber(values.timeout, '-W', 10) * 1000;
  const size = values.size === undefined ? 56 : Math.floor(positiveNumber(values.size, '-s', 56));
  const { device, stack } = await bringUp(values.config, values.verbose ?? false);
  try {
    return await pingLoop(stack, target, { count, intervalMs, timeoutMs, size });
  } finally {
    stack.close();
    await device.close();
  }
}

/** Prints like ping(8): a line per reply, then loss and rtt min/avg/max/mdev. Exit 0 if any reply came. */
async function pingLoop(
  stack: Stack,
  target: string,
  o: { count: number; intervalMs: number; timeoutMs: number; size: number },
): Promise<number> {
  const v6 = target.includes(':');
  console.log(`PING ${target} (${target}) ${o.size}(${o.size + (v6 ? 48 : 28)}) bytes of data.`);
  const rtts: number[] = [];
  let sent = 0;
  let interrupted = false;
  let timer: ReturnType<typeof setTimeout> | undefined;
  let wake = () => {};
  const onSignal = () => {
    interrupted = true;
    clearTimeout(timer);
    wake();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  const start = performance.now();
  const inflight: Promise<void>[] = [];
  try {
    for (let seq = 1; seq <= o.count && !interrupted; seq++) {
      sent++;
      inflight.push(
        stack.ping(target, { seq, size: o.size, timeoutMs: o.timeoutMs }).then(
          (r) => {
            rtts.push(r.rttMs);
            const field = v6 ? 'hlim' : 'ttl';
            console.log(
              `${r.bytes} bytes from ${r.from}: icmp_seq=${seq} ${field}=${r.ttl} time=${r.rttMs.toFixed(3)} ms`,
            );
          },
          (err: unknown) => {
            if (err instanceof NetstackError && err.code === 'TIMEOUT') return;
            if (err instanceof NetstackError && err.code === 'CLOSED') return;
            throw err;
          },
        ),
      );
      if (seq < o.count) {
        await new Promise<void>((resolve) => {
          wake = resolve;
          timer = setTimeout(resolve, o.intervalMs);
        });
      }
    }
    if (!interrupted) await Promise.all(inflight);
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
  const received = rtts.length;
  const loss = sent === 0 ? 0 : Math.round(((sent - received) / sent) * 100);
  console.log(`\n--- ${target} ping statistics ---`);
  console.log(
    `${sent} packets transmitted, ${received} received, ${loss}% packet loss, time ${Math.round(performance.now() - start)}ms`,
  );
  if (received > 0) {
    const min = Math.min(...rtts);
    const max = Math.max(...rtts);
    const avg = rtts.reduce((a, b) => a + b, 0) / received;
    const mdev = Math.sqrt(rtts.reduce((a, b) => a + (b - avg) ** 2, 0) / received);
    console.log(`rtt min/avg/max/mdev = ${[min, avg, max, mdev].map((x) => x.toFixed(3)).join('/')} ms`);
  }
  return received > 0 ? 0 : 1;
}
