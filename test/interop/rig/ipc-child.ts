// A child process asked over IPC, for the rigs that run a node or a DuckDB in a process of its own
// (tailnet-process.ts, test/sql/duck-process.ts): requests numbered and answered by id, a ready
// message first, stderr kept for failure messages, and an exit that asks before it kills.
import type { ChildProcess } from 'node:child_process';

/** The IPC plumbing of one child; `R` is its reply message, which carries the request's `id`. */
export class IpcChild<R extends { id: number }> {
  private nextId = 1;
  private readonly waiting = new Map<number, (r: R) => void>();
  private readonly exited: Promise<number | null>;
  /** What the child printed on stderr so far. */
  stderr = '';

  /** `what` names the child in messages; `lost` is the reply to requests its exit left unanswered. */
  constructor(
    private readonly child: ChildProcess,
    private readonly what: string,
    lost: (id: number, stderr: string) => R,
  ) {
    child.on('message', (m: R | { ready: true }) => {
      if (!('id' in m)) return;
      this.waiting.get(m.id)?.(m);
      this.waiting.delete(m.id);
    });
    child.stderr?.on('data', (d: Buffer) => {
      this.stderr += d.toString();
    });
    this.exited = new Promise((resolve) => child.once('exit', (code) => resolve(code)));
    void this.exited.then(() => {
      for (const [id, done] of this.waiting) done(lost(id, this.stderr));
      this.waiting.clear();
    });
  }

  /** Resolves at the child's first message (it is ready); rejects if it exits before. */
  ready(): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.child.once('message', () => resolve());
      this.child.once('exit', (code) =>
        reject(new Error(`${this.what} exited (${code}) before ready:\n${this.stderr}`)),
      );
    });
  }

  /** Sends `message` with a fresh id; resolves with the reply to it. */
  request(message: Record<string, unknown>): Promise<R> {
    const id = this.nextId++;
    const reply = new Promise<R>((resolve) => this.waiting.set(id, resolve));
    this.child.send({ id, ...message });
    return reply;
  }

  /** Asks the child to exit, kills it after `graceMs`; its exit code (null when killed or signalled). */
  async exit(graceMs: number): Promise<number | null> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return this.child.exitCode;
    if (this.child.connected) this.child.send({ op: 'exit' });
    const timer = setTimeout(() => this.child.kill('SIGKILL'), graceMs);
    const code = await this.exited;
    clearTimeout(timer);
    return code;
  }
}
