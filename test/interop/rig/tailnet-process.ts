// The test's side of tailnet-child.mjs: our node (the library, compiled) in its own process inside a lab
// host's namespace, asked over IPC. The same questions as of a node in the test's process, where the
// node must run behind a namespace's NAT or on its LAN.
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { TailnetOptions, TailnetStatus } from '../../../src/tailnet/tailnet.js';
import type { Cleanup } from './exec.js';
import { IpcChild } from './ipc-child.js';

const here = dirname(fileURLToPath(import.meta.url));
/** tailnet-child.mjs: beside this module, or (compiled for the bench into dist-bench/) in the source tree. */
const CHILD = [
  join(here, 'tailnet-child.mjs'),
  resolve(here, '../../../../test/interop/rig/tailnet-child.mjs'),
].find(existsSync)!;

/** A GET through the node: what arrived. */
export interface Fetched {
  status: number;
  bytes: number;
  sha256: string;
  ms: number;
}

/** How a dial failed (or `connected`). */
export interface DialOutcome {
  code: string;
  message: string;
  ms: number;
}

/** UDP answers, in the order sent (null where none came within 3 s). */
export interface UdpOutcome {
  answers: Array<{ sent: string; got: { text: string; from: string } | null }>;
  ms: number;
}

/** An error the child's node threw, with its code. */
export class ChildError extends Error {
  constructor(
    message: string,
    readonly code: string | undefined,
  ) {
    super(message);
    this.name = 'ChildError';
  }
}

type Reply = { id: number; result: unknown } | { id: number; error: string; code?: string };

/** One node process; `exit()` (registered on cleanup) closes the node and ends it. */
export class TailnetProcess {
  private readonly ipc: IpcChild<Reply>;

  private constructor(child: ChildProcess) {
    this.ipc = new IpcChild<Reply>(child, 'node process', (id, stderr) => ({
      id,
      error: `node process exited:\n${stderr}`,
    }));
  }

  /** Starts the process in `netns` (null: here) with `tailnetModule`, the compiled quackscale/tailnet. */
  static async start(cleanup: Cleanup, netns: string | null, tailnetModule: string): Promise<TailnetProcess> {
    const env = { ...process.env, QS_TAILNET_MODULE: tailnetModule };
    const cmd =
      netns === null ? [process.execPath, CHILD] : ['ip', 'netns', 'exec', netns, process.execPath, CHILD];
    const child = spawn(cmd[0]!, cmd.slice(1), { env, stdio: ['ignore', 'inherit', 'pipe', 'ipc'] });
    const p = new TailnetProcess(child);
    cleanup.add('tailnet node process', () => p.exit());
    await p.ipc.ready();
    return p;
  }

  private async call<T>(op: string, args: unknown = {}): Promise<T> {
    const r = await this.ipc.request({ op, args });
    if ('error' in r) throw new ChildError(r.error, r.code);
    return r.result as T;
  }

  up(options: Omit<TailnetOptions, 'logger'>): Promise<TailnetStatus> {
    return this.call('up', options);
  }

  status(): Promise<TailnetStatus> {
    return this.call('status');
  }

  /** GET `url` (over the tailnet, or a direct net with `direct`), hashing the body. */
  fetch(url: string, opts: { direct?: boolean; timeoutMs?: number } = {}): Promise<Fetched> {
    return this.call('fetch', { url, ...opts });
  }

  /** A TCP dial expected to fail; with `timeoutMs`, one that has not connected by then ends with code `timeout`. */
  dialError(
    host: string,
    port: number,
    opts: { direct?: boolean; timeoutMs?: number } = {},
  ): Promise<DialOutcome> {
    return this.call('dialError', { host, port, ...opts });
  }

  udp(host: string, port: number, count: number): Promise<UdpOutcome> {
    return this.call('udp', { host, port, count });
  }

  /** What it printed on stderr so far, for a failing test's message. */
  output(): string {
    return this.ipc.stderr;
  }

  /** Closes the node and ends the process (killed after `graceMs`). */
  async exit(graceMs = 10_000): Promise<void> {
    await this.ipc.exit(graceMs);
  }
}
