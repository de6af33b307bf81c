/**
 * `quackscale derp …`: run a DERP relay (like derper), or probe one with two clients (like a
 * one-shot derpprobe that also measures RTT and throughput).
 */
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { DerpClient } from '../derp/client.js';
import { DerpError } from '../derp/errors.js';
import { DerpHttpServer } from '../derp/http-server.js';
import { generateNodeKeyPair } from '../derp/keys.js';
import { parseCommand } from './command.js';
import { parseLimits, positiveOption } from './limits.js';
import { cliLogger, UsageError } from './log.js';
import { DERP_PROBE, DERP_SERVE } from './spec/derp.js';

/** For embedding and tests: stop `serve` without a signal, and learn where it listens. */
export interface DerpCommandHooks {
  signal?: AbortSignal;
  onListening?: (url: string, stunPort: number | undefined) => void;
}

/**
 * Runs `derp <subcommand>`; resolves with the exit status (serve: when SIGINT/SIGTERM stops it).
 *
 * @example
 * process.exitCode = await derpCommand(['probe', 'http://127.0.0.1:3340/derp', '--count', '100']);
 */
export async function derpCommand(argv: string[], hooks: DerpCommandHooks = {}): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub === 'serve') return derpServe(rest, hooks);
  if (sub === 'probe') return derpProbe(rest);
  throw new UsageError(sub ? `unknown derp subcommand '${sub}'` : 'derp wants a subcommand: serve or probe');
}

function parseHostPort(text: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]*)):(\d+)$/.exec(text);
  const port = m ? Number(m[3]) : Number.NaN;
  if (!m || port > 65535) throw new UsageError(`--addr must be HOST:PORT, got '${text}'`);
  return { host: m[1] ?? (m[2] || '0.0.0.0'), port };
}

function intOption(name: string, v: string | undefined, dflt: number, min: number, max: number): number {
  if (v === undefined) return dflt;
  const n = Number(v);
  if (!Number.isInteger(n) || n < min || n > max)
    throw new UsageError(`--${name} must be an integer in [${min}, ${max}]`);
  return n;
}

function readPem(flag: string, path: string): Buffer {
  try {
    return readFileSync(path);
  } catch (err) {
    throw new UsageError(`${flag} ${path}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`, {
      cause: err,
    });
  }
}

/** `quackscale derp serve`: resolves with 0 once SIGINT, SIGTERM or `hooks.signal` stops it. */
export async function derpServe(argv: string[], hooks: DerpCommandHooks = {}): Promise<number> {
  const args = parseCommand(DERP_SERVE, argv);
  if (!args) return 0;
  const { values } = args;
  const { host, port } = parseHostPort(values.addr);
  if (!values['tls-cert'] !== !values['tls-key'])
    throw new UsageError('--tls-cert and --tls-key go together');
  const log = cliLogger(values.verbose ?? false);
  const tls = values['tls-cert']
    ? { cert: readPem('--tls-cert', values['tls-cert']), key: readPem('--tls-key', values['tls-key']!) }
    : undefined;
  const srv = await DerpHttpServer.listen({
    host,
    port,
    tls,
    stunPort:
      values['stun-port'] === undefined
        ? undefined
        : intOption('stun-port', values['stun-port'], 3478, 0, 65535),
    serverOptions: {
      logger: log,
      maxClients: intOption('max-clients', values['max-clients'], 10_000, 1, 1_000_000),
      loginTimeoutMs: positiveOption('login-timeout-ms', values['login-timeout-ms'], true, 2 ** 31 - 1),
      pongTimeoutMs: positiveOption('pong-timeout-ms', values['pong-timeout-ms'], true, 2 ** 31 - 1),
      writeTimeoutMs: positiveOption('write-timeout-ms', values['write-timeout-ms'], true, 2 ** 31 - 1),
    },
    limits: parseLimits(values),
  });
  log.info(
    `derp: serving ${srv.url} on ${srv.addresses.join(', ')}${srv.stun ? `, STUN on udp ${srv.stun.addresses.join(', ')}` : ''}`,
  );
  hooks.onListening?.(srv.url, srv.stun?.port);
  await new Promise<void>((resolve) => {
    const stop = (): void => {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      hooks.signal?.removeEventListener('abort', stop);
      resolve();
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
    if (hooks.signal?.aborted) stop();
    hooks.signal?.addEventListener('abort', stop);
  });
  log.info('derp: shutting down');
  await srv.close();
  return 0;
}

/** `quackscale derp probe`: exit 0 only if every packet came back intact. */
export async function derpProbe(argv: string[]): Promise<number> {
  const args = parseCommand(DERP_PROBE, argv);
  if (!args) return 0;
  const { values, positionals } = args;
  const url = positionals[0];
  if (!url || positionals.length > 1) throw new UsageError('derp probe takes one URL');
  const count = intOption('count', values.count, 10, 1, 10_000_000);
  const size = intOption('size', values.size, 1024, 1, 65536);
  const timeoutMs = intOption('timeout-ms', values['timeout-ms'], 30_000, 100, 3_600_000);
  const common = {
    url,
    websocket: values.websocket ?? false,
    tls: {
      insecure: values.insecure ?? false,
      ...(values['cert-name'] ? { certName: values['cert-name'] } : {}),
    },
  };
  let a: DerpClient | undefined;
  let b: DerpClient | undefined;
  try {
    a = await DerpClient.connect({ ...common, privateKey: generateNodeKeyPair().privateKey });
    b = await DerpClient.connect({ ...common, privateKey: generateNodeKeyPair().privateKey });
    const r = await pingPong(a, b, count, size, timeoutMs);
    const rtts = r.rtts;
    const fmt = (n: number) => n.toFixed(3);
    console.log(`derp probe ${url}: ${r.delivered}/${count} packets of ${size} bytes came back intact`);
    if (rtts.length > 0) {
      const avg = rtts.reduce((x, y) => x + y, 0) / rtts.length;
      console.log(`rtt min/avg/max = ${fmt(Math.min(...rtts))}/${fmt(avg)}/${fmt(Math.max(...rtts))} ms`);
    }
    console.log(
      `throughput ${((2 * r.delivered * size) / 1e6 / (r.seconds || 1e-9)).toFixed(2)} MB/s relayed (both directions) in ${r.seconds.toFixed(3)} s`,
    );
    if (r.corrupt > 0) console.log(`${r.corrupt} packets came back corrupted`);
    return r.delivered === count && r.corrupt === 0 ? 0 : 1;
  } catch (err) {
    if (err instanceof DerpError) {
      console.error(`derp probe ${url}: ${err.message}`);
      return 1;
    }
    throw err;
  } finally {
    a?.close();
    b?.close();
  }
}

/** A sends `count` packets to B, B echoes each back; at most 16 in flight, each checked by SHA-256. */
function pingPong(a: DerpClient, b: DerpClient, count: number, size: number, timeoutMs: number) {
  const WINDOW = 16;
  const sent = new Map<number, { at: number; hash: string }>();
  const rtts: number[] = [];
  let next = 0;
  let corrupt = 0;
  const start = performance.now();
  b.onPacket((src, data) => b.send(src, data));
  return new Promise<{ delivered: number; corrupt: number; rtts: number[]; seconds: number }>((resolve) => {
    const finish = (): void => {
      clearTimeout(timer);
      resolve({ delivered: rtts.length, corrupt, rtts, seconds: (performance.now() - start) / 1000 });
    };
    const timer = setTimeout(finish, timeoutMs);
    const sendOne = (): void => {
      const seq = next++;
      const p = randomBytes(size);
      if (size >= 4) p.writeUInt32BE(seq, 0);
      sent.set(seq, { at: performance.now(), hash: createHash('sha256').update(p).digest('hex') });
      a.send(b.publicKey, p);
    };
    a.onPacket((_src, data) => {
      const seq = data.length >= 4 ? Buffer.from(data.buffer, data.byteOffset, 4).readUInt32BE(0) : next - 1;
      const s = sent.get(seq);
      if (s === undefined) return;
      sent.delete(seq);
      if (data.length !== size || createHash('sha256').update(data).digest('hex') !== s.hash) corrupt++;
      else rtts.push(performance.now() - s.at);
      if (next < count) sendOne();
      else if (sent.size === 0) finish();
    });
    while (next < Math.min(WINDOW, count)) sendOne();
  });
}
