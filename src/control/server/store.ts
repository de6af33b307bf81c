/**
 * The control server's persistent state: one JSON file (`control-server.json`) in a 0700
 * directory, written 0600 and atomically, holding the Noise key, the nodes and the address
 * counter. Auth keys live beside it (authkeys.ts) so that `control authkey` can add one while
 * the server runs.
 */
import { chmod, mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { StateError } from '../errors.js';
import { type MachinePrivate, PrivateKey } from '../keys.js';
import type { Hostinfo } from '../tailcfg.js';
import type { ControlStateStore } from './state-store.js';

/** One registered node. */
export interface NodeRecord {
  id: number;
  stableId: string;
  machineKey: string;
  nodeKey: string;
  discoKey: string;
  hostname: string;
  /** The DNS label, unique in the tailnet. */
  givenName: string;
  userId: number;
  tags: string[];
  ipv4: string;
  ipv6: string;
  endpoints: string[];
  hostinfo: Hostinfo | null;
  created: string;
  lastSeen: string | null;
  /** RFC 3339 or null for "never". */
  keyExpiry: string | null;
  ephemeral: boolean;
  authKeyId: string | null;
  capVersion: number;
  homeDERP: number;
  /** Routes an admin approved (`control approve-routes`); absent in state files from before routes. */
  approvedRoutes?: string[];
}

/** A user that nodes belong to; user 1 (`quackscale`) exists without a record. */
export interface UserRecord {
  id: number;
  loginName: string;
  created: string;
}

export interface ServerStateData {
  version: 1;
  noiseKey: string;
  nextNodeId: number;
  /** Index of the next address to hand out (1 = 100.64.0.1). */
  nextAddress: number;
  nodes: NodeRecord[];
  /** Users named at interactive approval (absent in state files from before them). */
  users?: UserRecord[];
}

const FILE = 'control-server.json';

/** Loads and saves the server state; saves are serialised so they never interleave. */
export class ServerStore implements ControlStateStore {
  readonly file: string;
  #saving: Promise<void> = Promise.resolve();

  constructor(readonly dir: string) {
    this.file = join(dir, FILE);
  }

  async ensureDir(): Promise<void> {
    try {
      await mkdir(this.dir, { recursive: true, mode: 0o700 });
      await chmod(this.dir, 0o700);
    } catch (err) {
      throw new StateError(`server state dir ${this.dir}: ${(err as Error).message}`, { cause: err });
    }
  }

  /** The saved state, or a fresh one with a new Noise key. */
  async load(): Promise<{ data: ServerStateData; noiseKey: MachinePrivate }> {
    await this.ensureDir();
    let text: string | undefined;
    try {
      text = await readFile(this.file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') {
        throw new StateError(`reading ${this.file}: ${(err as Error).message}`, { cause: err });
      }
    }
    if (text === undefined) {
      const noiseKey = PrivateKey.generate('machine');
      const data: ServerStateData = {
        version: 1,
        noiseKey: noiseKey.toStateText(),
        nextNodeId: 1,
        nextAddress: 1,
        nodes: [],
      };
      await this.save(data);
      return { data, noiseKey };
    }
    let data: ServerStateData;
    try {
      data = JSON.parse(text) as ServerStateData;
    } catch {
      // Deliberately without the SyntaxError: V8 quotes the offending text, which may be the Noise key.
      throw new StateError(`${this.file} is corrupt: not valid JSON`);
    }
    if (data.version !== 1 || !Array.isArray(data.nodes))
      throw new StateError(`${this.file}: unknown layout`);
    try {
      return { data, noiseKey: PrivateKey.parse('machine', data.noiseKey) };
    } catch (err) {
      throw new StateError(`${this.file}: ${(err as Error).message}`, { cause: err });
    }
  }

  /** Writes a snapshot of `data` (taken now); resolves when it is on disk. */
  save(data: ServerStateData): Promise<void> {
    const text = `${JSON.stringify(data, null, 1)}\n`;
    const next = this.#saving.then(async () => {
      const tmp = `${this.file}.tmp`;
      try {
        await writeFile(tmp, text, { mode: 0o600 });
        await rename(tmp, this.file);
      } catch (err) {
        throw new StateError(`writing ${this.file}: ${(err as Error).message}`, { cause: err });
      }
    });
    // A failed save must not poison later ones; the caller of this save still sees its error.
    this.#saving = next.catch(() => undefined);
    return next;
  }

  /** Resolves once every save started so far is on disk (or has failed). */
  flush(): Promise<void> {
    return this.#saving;
  }
}
