/**
 * Pending interactive registrations: a node that asked to register without an auth key waits
 * here, under an unguessable id, until an admin approves or rejects it or it expires. Kept in
 * memory only (as Headscale's auth cache, hscontrol/state/state.go: 15 min, 1024 entries; ours
 * refuses new entries at the cap rather than evicting, so a flood of unauthenticated requests
 * cannot push a real user's login out). One entry per machine key: a machine asking again
 * replaces its older entry, or gets the same one back if it is still pending for the same node key.
 */
import { randomBytes } from 'node:crypto';
import type { RegisterInput } from './registry.js';

export type PendingState = 'pending' | 'approved' | 'rejected';

/** One registration waiting for an admin. */
export interface PendingRegistration {
  readonly id: string;
  /** What the node asked for (its latest request, if it asked more than once). */
  input: RegisterInput;
  /** Epoch ms. */
  readonly created: number;
  /** Epoch ms; after this the entry is gone and the node gets a new AuthURL on its next request. */
  readonly expires: number;
  state: PendingState;
  /** The node created by approval. */
  nodeId?: number;
}

/** Why a pending-registration operation failed; `code` is stable for callers and the HTTP layer. */
export class PendingRegistrationError extends Error {
  override readonly name = 'PendingRegistrationError';
  constructor(
    readonly code: 'not-found' | 'rejected' | 'too-many' | 'bad-request',
    message: string,
  ) {
    super(message);
  }
}

export interface PendingOptions {
  /** Entries held at once (default 256); beyond it new interactive logins are refused. */
  max?: number;
  /** Lifetime of an entry in ms (default 10 min). */
  ttlMs?: number;
  /** Clock (epoch ms), for tests. */
  now?: () => number;
}

/** 24 random bytes, base64url: 32 characters, 192 bits (Headscale's AuthID has 24 hex digits). */
const ID_RE = /^[A-Za-z0-9_-]{32}$/;

/** A fresh id. Never one that starts with '-': a bare id is a CLI argument (`control approve ID`). */
function newRegistrationId(): string {
  for (;;) {
    const id = randomBytes(24).toString('base64url');
    if (!id.startsWith('-')) return id;
  }
}

/**
 * The registration id in `/register/<id>` URLs, or a bare id; undefined if `text` is neither.
 * Only the path matters: the host in a URL is whatever the client was told.
 */
export function parseRegistrationId(text: string): string | undefined {
  const t = text.trim();
  if (ID_RE.test(t)) return t;
  const m = /\/register\/([A-Za-z0-9_-]{32})\/?(?:[?#].*)?$/.exec(t);
  return m?.[1];
}

interface Entry extends PendingRegistration {
  waiters: Set<() => void>;
}

/** The in-memory table of pending registrations. */
export class PendingRegistrations {
  readonly max: number;
  readonly ttlMs: number;
  readonly #now: () => number;
  readonly #entries = new Map<string, Entry>();

  constructor(opts: PendingOptions = {}) {
    this.max = opts.max ?? 256;
    this.ttlMs = opts.ttlMs ?? 10 * 60_000;
    this.#now = opts.now ?? Date.now;
  }

  get size(): number {
    this.prune();
    return this.#entries.size;
  }

  /**
   * Records a registration request. Returns the entry and whether it is new (false when the
   * same machine and node key are already pending). Throws `too-many` at the cap.
   */
  begin(input: RegisterInput): { reg: PendingRegistration; fresh: boolean } {
    this.prune();
    const old = [...this.#entries.values()].find((e) => e.input.machineKey === input.machineKey);
    if (old && old.state === 'pending' && old.input.nodeKey === input.nodeKey) {
      old.input = input;
      return { reg: old, fresh: false };
    }
    if (old) this.#remove(old);
    if (this.#entries.size >= this.max) {
      throw new PendingRegistrationError(
        'too-many',
        `too many interactive logins are waiting for approval (${this.max}); try again later or use an auth key`,
      );
    }
    const now = this.#now();
    const entry: Entry = {
      id: newRegistrationId(),
      input,
      created: now,
      expires: now + this.ttlMs,
      state: 'pending',
      waiters: new Set(),
    };
    this.#entries.set(entry.id, entry);
    return { reg: entry, fresh: true };
  }

  /** The live entry with this id (expired ones are dropped on the way). */
  get(id: string): PendingRegistration | undefined {
    const e = this.#entries.get(id);
    if (e && this.#now() >= e.expires) {
      this.#remove(e);
      return undefined;
    }
    return e;
  }

  /** Live entries, oldest first. */
  list(): PendingRegistration[] {
    this.prune();
    return [...this.#entries.values()];
  }

  /** Marks an entry approved (with its node) or rejected and wakes whoever waits on it. */
  settle(id: string, state: 'approved' | 'rejected', nodeId?: number): void {
    const e = this.#entries.get(id);
    if (!e) return;
    e.state = state;
    if (nodeId !== undefined) e.nodeId = nodeId;
    this.#wake(e);
  }

  /** Forgets whatever a machine has pending (it registered another way, e.g. with an auth key). */
  deleteMachine(machineKey: string): void {
    for (const e of [...this.#entries.values()]) if (e.input.machineKey === machineKey) this.#remove(e);
  }

  /** Forgets an entry (its node logged in, or it was superseded), waking its waiters. */
  delete(id: string): void {
    const e = this.#entries.get(id);
    if (e) this.#remove(e);
  }

  /**
   * Resolves when the entry changes (settled, removed, expired), after `ms`, or when `signal`
   * aborts, whichever is first. Never rejects: the caller looks at the entry again.
   */
  wait(id: string, ms: number, signal: AbortSignal): Promise<void> {
    const e = this.#entries.get(id);
    if (!e || signal.aborted) return Promise.resolve();
    // Wake at expiry too, so a waiting node is told about a fresh registration promptly.
    const until = Math.max(0, Math.min(ms, e.expires - this.#now()));
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        signal.removeEventListener('abort', done);
        e.waiters.delete(done);
        resolve();
      };
      const timer = setTimeout(done, until);
      timer.unref();
      signal.addEventListener('abort', done, { once: true });
      e.waiters.add(done);
    });
  }

  /** Drops expired entries. */
  prune(): void {
    const now = this.#now();
    for (const e of [...this.#entries.values()]) if (now >= e.expires) this.#remove(e);
  }

  /** Drops everything and wakes every waiter (server shutdown). */
  clear(): void {
    for (const e of [...this.#entries.values()]) this.#remove(e);
  }

  #remove(e: Entry): void {
    this.#entries.delete(e.id);
    this.#wake(e);
  }

  #wake(e: Entry): void {
    for (const w of [...e.waiters]) w();
  }
}
