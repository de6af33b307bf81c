// Shared rig for in-process control tests: a ControlServer in a temp dir and clients in their own temp dirs,
// all torn down by `cleanup()`.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Duplex, PassThrough } from 'node:stream';
import { vi } from 'vitest';
import { controlCommand } from '../../src/cli/control.js';
import { ControlClient, type ControlClientOptions } from '../../src/control/client.js';
import { ControlServer, type ControlServerOptions } from '../../src/control/server/server.js';

export class Rig {
  readonly dirs: string[] = [];
  readonly clients: ControlClient[] = [];
  readonly servers: ControlServer[] = [];

  async dir(prefix = 'qs-ctlx-'): Promise<string> {
    const d = await mkdtemp(join(tmpdir(), prefix));
    this.dirs.push(d);
    return d;
  }

  async server(opts: Partial<ControlServerOptions> & { port?: number } = {}): Promise<ControlServer> {
    const srv = await ControlServer.create({
      stateDir: opts.stateDir ?? (await this.dir('qs-ctls-')),
      ...opts,
    });
    await srv.listen(opts.port ?? 0);
    this.servers.push(srv);
    return srv;
  }

  async client(opts: Partial<ControlClientOptions> = {}): Promise<ControlClient> {
    const c = await ControlClient.open({
      stateDir: opts.stateDir ?? (await this.dir('qs-ctlc-')),
      loginTimeoutMs: 2_000,
      backoff: { initialMs: 20, maxMs: 200 },
      ...opts,
    });
    this.clients.push(c);
    return c;
  }

  async cleanup(): Promise<void> {
    for (const c of this.clients.splice(0)) await c.close();
    for (const s of this.servers.splice(0)) await s.close();
    for (const d of this.dirs.splice(0)) await rm(d, { recursive: true, force: true });
  }
}

/** Two Duplexes wired back to back, like a socket pair. */
export function duplexPair(): [Duplex, Duplex] {
  const ab = new PassThrough();
  const ba = new PassThrough();
  const mk = (readable: PassThrough, writable: PassThrough): Duplex =>
    new Duplex({
      read() {
        readable.resume();
      },
      write(chunk, _enc, cb) {
        writable.write(chunk, cb);
      },
      final(cb) {
        writable.end();
        cb();
      },
    });
  const a = mk(ba, ab);
  const b = mk(ab, ba);
  ba.on('data', (c) => a.push(c));
  ba.on('end', () => a.push(null));
  ab.on('data', (c) => b.push(c));
  ab.on('end', () => b.push(null));
  return [a, b];
}

/** Runs `quackscale control …` in this process with console.log and console.error captured. */
export async function runControlCli(argv: string[]): Promise<{ code: number; out: string; err: string }> {
  const out: string[] = [];
  const err: string[] = [];
  vi.spyOn(console, 'log').mockImplementation((...a: unknown[]) => void out.push(a.join(' ')));
  vi.spyOn(console, 'error').mockImplementation((...a: unknown[]) => void err.push(a.join(' ')));
  try {
    const code = await controlCommand(argv);
    return { code, out: out.join('\n'), err: err.join('\n') };
  } finally {
    vi.restoreAllMocks();
  }
}
