/**
 * The client's state directory: one JSON file with the machine key (kept across logins, as
 * tailscaled keeps it), the node key, the disco key, the server URL and what the last login
 * returned. The directory is 0700 and the file 0600, written atomically (temp file + rename);
 * key text only ever goes into this file.
 */
import { chmod, mkdir, readFile, rename, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { StateError } from './errors.js';
import {
  type DiscoPrivate,
  KeyParseError,
  type MachinePrivate,
  type NodePrivate,
  PrivateKey,
} from './keys.js';

const FILE = 'control-state.json';

/** What the last successful registration told us. */
export interface LoginInfo {
  hostname: string;
  userId: number;
  loginName: string;
  displayName: string;
  ephemeral: boolean;
  /** When registration completed (RFC 3339). */
  registeredAt: string;
  /** From the first netmap, for `control netmap` when offline. */
  nodeName?: string;
  addresses?: string[];
}

/** The client's persistent state. */
export interface ControlState {
  serverURL: string | undefined;
  machineKey: MachinePrivate;
  nodeKey: NodePrivate | undefined;
  /** The previous node key while a rotation is registered (RegisterRequest.OldNodeKey). */
  oldNodeKey: NodePrivate | undefined;
  discoKey: DiscoPrivate;
  login: LoginInfo | undefined;
}

interface StateFile {
  version: 1;
  serverURL?: string;
  machineKey: string;
  nodeKey?: string;
  oldNodeKey?: string;
  discoKey: string;
  login?: LoginInfo;
}

/** A fresh state with new machine and disco keys and no login. */
export function freshState(): ControlState {
  return {
    serverURL: undefined,
    machineKey: PrivateKey.generate('machine'),
    nodeKey: undefined,
    oldNodeKey: undefined,
    discoKey: PrivateKey.generate('disco'),
    login: undefined,
  };
}

/**
 * Where a client keeps its state: a directory on disk ({@link StateDir}), or what a web page
 * has (memory, IndexedDB: browser/state.ts).
 */
export interface ControlStateStore {
  /** The saved state, or a fresh one (not yet saved). */
  loadOrCreate(): Promise<ControlState>;
  save(state: ControlState): Promise<void>;
  /** Resolves when every save issued so far has finished. */
  flush(): Promise<void>;
}

/** The state as the text of the state file (key text included: it goes nowhere else). */
export function encodeState(state: ControlState): string {
  const f: StateFile = {
    version: 1,
    serverURL: state.serverURL,
    machineKey: state.machineKey.toStateText(),
    nodeKey: state.nodeKey?.toStateText(),
    oldNodeKey: state.oldNodeKey?.toStateText(),
    discoKey: state.discoKey.toStateText(),
    login: state.login,
  };
  return `${JSON.stringify(f, null, 2)}\n`;
}

/** Parses {@link encodeState}'s text; `where` names its place in errors. */
export function decodeState(text: string, where: string): ControlState {
  let f: StateFile;
  try {
    f = JSON.parse(text) as StateFile;
  } catch {
    // Deliberately without the SyntaxError: V8 quotes the offending text, which may be key material.
    throw new StateError(`${where} is not valid JSON`);
  }
  try {
    return {
      serverURL: f.serverURL,
      machineKey: PrivateKey.parse('machine', f.machineKey),
      nodeKey: f.nodeKey ? PrivateKey.parse('node', f.nodeKey) : undefined,
      oldNodeKey: f.oldNodeKey ? PrivateKey.parse('node', f.oldNodeKey) : undefined,
      discoKey: PrivateKey.parse('disco', f.discoKey),
      login: f.login,
    };
  } catch (err) {
    if (err instanceof KeyParseError) throw new StateError(`${where}: ${err.message}`, { cause: err });
    throw err;
  }
}

/** Reads and writes the state file in `dir`. */
export class StateDir implements ControlStateStore {
  readonly file: string;
  #saving: Promise<void> = Promise.resolve();
  constructor(readonly dir: string) {
    this.file = join(dir, FILE);
  }

  /** Creates the directory (0700) if needed and tightens its mode if it is looser. */
  async ensure(): Promise<void> {
    try {
      await mkdir(this.dir, { recursive: true, mode: 0o700 });
      const st = await stat(this.dir);
      if ((st.mode & 0o077) !== 0) await chmod(this.dir, 0o700);
    } catch (err) {
      throw new StateError(`state dir ${this.dir}: ${(err as Error).message}`, { cause: err });
    }
  }

  /** The saved state, or undefined when there is none yet. */
  async load(): Promise<ControlState | undefined> {
    let text: string;
    try {
      text = await readFile(this.file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw new StateError(`reading ${this.file}: ${(err as Error).message}`, { cause: err });
    }
    return decodeState(text, this.file);
  }

  /** The saved state, or a fresh one (not yet saved). */
  async loadOrCreate(): Promise<ControlState> {
    await this.ensure();
    return (await this.load()) ?? freshState();
  }

  /** Writes the state atomically with mode 0600; saves are serialised (they share a temp file). */
  save(state: ControlState): Promise<void> {
    const next = this.#saving.then(() => this.#write(state));
    // A failed save must not poison later ones; this save's caller still gets its error.
    this.#saving = next.catch(() => undefined);
    return next;
  }

  /** Resolves when every save issued so far has finished. */
  async flush(): Promise<void> {
    await this.#saving;
  }

  async #write(state: ControlState): Promise<void> {
    await this.ensure();
    const tmp = `${this.file}.${process.pid}.tmp`;
    try {
      await writeFile(tmp, encodeState(state), { mode: 0o600 });
      await chmod(tmp, 0o600);
      await rename(tmp, this.file);
    } catch (err) {
      throw new StateError(`writing ${this.file}: ${(err as Error).message}`, { cause: err });
    }
  }
}
