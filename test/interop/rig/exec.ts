// Child processes for the interop rig: one-shot commands with a timeout, long-lived processes that are
// stopped on cleanup, and a cleanup stack. Everything can run inside a network namespace through
// `ip netns exec`, which execs the command in place, so the child's pid is the command's own pid.
import { type ChildProcess, spawn } from 'node:child_process';
import { accessSync, constants, statSync } from 'node:fs';
import { delimiter, join } from 'node:path';

type CleanupStep = { label: string; fn: () => unknown };

/**
 * Steps run in reverse order of registration, and every step runs even when an earlier one fails, so a
 * half-built topology is still torn down. Errors are collected, logged once and returned.
 */
export class Cleanup {
  private steps: CleanupStep[] = [];

  add(label: string, fn: () => unknown): void {
    this.steps.push({ label, fn });
  }

  get size(): number {
    return this.steps.length;
  }

  async run(): Promise<Error[]> {
    const errors: Error[] = [];
    while (this.steps.length > 0) {
      const step = this.steps.pop()!;
      try {
        await step.fn();
      } catch (err) {
        errors.push(new Error(`cleanup "${step.label}": ${errorText(err)}`, { cause: err }));
      }
    }
    if (errors.length > 0) {
      console.warn(
        `[interop rig] ${errors.length} cleanup step(s) failed:\n${errors.map((e) => `  ${e.message}`).join('\n')}`,
      );
    }
    return errors;
  }
}

export function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

export interface ExecOptions {
  timeoutMs?: number;
  input?: string;
  env?: Record<string, string>;
  /** Reject on a non-zero exit (default true). */
  check?: boolean;
}

export interface ExecResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export class ExecError extends Error {
  constructor(
    message: string,
    readonly result: ExecResult,
  ) {
    super(message);
    this.name = 'ExecError';
  }
}

function argv(ns: string | null, cmd: string, args: readonly string[]): [string, string[]] {
  return ns === null ? [cmd, [...args]] : ['ip', ['netns', 'exec', ns, cmd, ...args]];
}

function describeCommand(ns: string | null, cmd: string, args: readonly string[]): string {
  return `${ns === null ? '' : `[netns ${ns}] `}${[cmd, ...args].join(' ')}`;
}

/** Runs a command to completion, in `ns` or (with null) in the current namespace. */
export function execIn(
  ns: string | null,
  cmd: string,
  args: readonly string[],
  opts: ExecOptions = {},
): Promise<ExecResult> {
  const [file, fileArgs] = argv(ns, cmd, args);
  const what = describeCommand(ns, cmd, args);
  const timeoutMs = opts.timeoutMs ?? 15_000;
  return new Promise((resolve, reject) => {
    const child = spawn(file, fileArgs, {
      stdio: ['pipe', 'pipe', 'pipe'],
      env: opts.env ? { ...process.env, ...opts.env } : process.env,
    });
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    child.stdout.setEncoding('utf8').on('data', (s: string) => {
      stdout += s;
    });
    child.stderr.setEncoding('utf8').on('data', (s: string) => {
      stderr += s;
    });
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, timeoutMs);
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(new Error(`${what}: ${err.message}`, { cause: err }));
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const result: ExecResult = { code, signal, stdout, stderr };
      if (timedOut) {
        reject(new ExecError(`${what}: timed out after ${timeoutMs} ms\n${stdout}${stderr}`, result));
      } else if ((opts.check ?? true) && code !== 0) {
        const why = code === null ? `killed by ${signal}` : `exited ${code}`;
        reject(new ExecError(`${what}: ${why}: ${(stderr || stdout).trim()}`, result));
      } else {
        resolve(result);
      }
    });
    // A command that exits without reading its input makes stdin fail with EPIPE; the exit status is what
    // counts, so the error goes into the captured stderr instead of crashing the worker.
    child.stdin.on('error', (err) => {
      stderr += `[stdin] ${err.message}\n`;
    });
    child.stdin.end(opts.input ?? '');
  });
}

export function exec(cmd: string, args: readonly string[], opts?: ExecOptions): Promise<ExecResult> {
  return execIn(null, cmd, args, opts);
}

export interface SpawnOptions {
  env?: Record<string, string>;
  /** When given, the process is stopped when this cleanup runs. */
  cleanup?: Cleanup;
  /** How much of the combined stdout+stderr to keep for diagnostics (default 256 KiB). */
  outputLimit?: number;
}

export interface Spawned {
  readonly pid: number;
  readonly child: ChildProcess;
  readonly command: string;
  /** Resolves when the process has exited, whoever stopped it. */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  isRunning(): boolean;
  /** The tail of its combined output. */
  output(): string;
  /** SIGTERM, then SIGKILL after graceMs. Idempotent. */
  stop(graceMs?: number): Promise<void>;
}

/** Starts a long-lived process, in `ns` or (with null) in the current namespace. */
export function spawnIn(
  ns: string | null,
  cmd: string,
  args: readonly string[],
  opts: SpawnOptions = {},
): Spawned {
  const [file, fileArgs] = argv(ns, cmd, args);
  const command = describeCommand(ns, cmd, args);
  const limit = opts.outputLimit ?? 256 * 1024;
  const child = spawn(file, fileArgs, {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: opts.env ? { ...process.env, ...opts.env } : process.env,
  });
  let out = '';
  const collect = (s: string): void => {
    out += s;
    if (out.length > limit) out = out.slice(out.length - limit);
  };
  child.stdout?.setEncoding('utf8').on('data', collect);
  child.stderr?.setEncoding('utf8').on('data', collect);
  let running = true;
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.on('error', (err) => {
      collect(`\n[spawn error] ${err.message}\n`);
      running = false;
      resolve({ code: null, signal: null });
    });
    child.on('exit', (code, signal) => {
      running = false;
      resolve({ code, signal });
    });
  });
  if (child.pid === undefined) running = false;

  const stop = async (graceMs = 3000): Promise<void> => {
    if (!running) return;
    child.kill('SIGTERM');
    let timer: NodeJS.Timeout | undefined;
    const killed = new Promise<void>((resolve) => {
      timer = setTimeout(() => {
        if (running) child.kill('SIGKILL');
        resolve();
      }, graceMs);
    });
    await Promise.race([exited, killed]);
    clearTimeout(timer);
    await exited;
  };
  const spawned: Spawned = {
    pid: child.pid ?? -1,
    child,
    command,
    exited,
    isRunning: () => running,
    output: () => out,
    stop,
  };
  opts.cleanup?.add(`stop ${command}`, () => stop());
  return spawned;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Polls `probe` until it returns a value other than undefined, or fails after timeoutMs. */
export async function waitFor<T>(
  what: string,
  probe: () => T | undefined | Promise<T | undefined>,
  timeoutMs = 5000,
  intervalMs = 20,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() >= deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(intervalMs);
  }
}

/** The absolute path of an executable found in PATH, or undefined. */
export function findExecutable(name: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (dir === '') continue;
    const candidate = join(dir, name);
    try {
      accessSync(candidate, constants.X_OK);
      if (statSync(candidate).isFile()) return candidate;
    } catch (err) {
      if (!['ENOENT', 'EACCES', 'ENOTDIR'].includes((err as NodeJS.ErrnoException).code ?? '')) {
        throw err;
      }
    }
  }
  return undefined;
}
