/**
 * Where the control server keeps its nodes and pre-auth keys. Two implementations: files in the
 * state directory (store.ts and authkeys.ts, the default), and DuckDB tables (src/sql/coordinator,
 * for `quackscale_serve`). The server holds its nodes in memory and hands the store a snapshot
 * after every change, so a store decides for itself what to write.
 */
import type { MachinePrivate } from '../keys.js';
import type { AuthKeyRecord, AuthKeyVerdict, NewAuthKeyOptions } from './authkeys.js';
import type { NodeRecord, ServerStateData } from './store.js';

/** The node table and the server's own key. */
export interface ControlStateStore {
  /** The saved state, or a fresh one with a new Noise key (persisted before it resolves). */
  load(): Promise<{ data: ServerStateData; noiseKey: MachinePrivate }>;
  /** Persists what changed in `data`; resolves when it is stored. */
  save(data: ServerStateData): Promise<void>;
  /** Resolves once every save started so far has finished (or failed). */
  flush(): Promise<void>;
  /**
   * Addresses other servers sharing this store have handed out, read fresh (none when the
   * store has one server).
   */
  foreignAddresses?(): Promise<Set<string>>;
  /**
   * Whether the address of `node`, just saved, is this server's to give: false when another
   * server sharing the store saved the same address first (the registry then picks another).
   * Absent: always true.
   */
  addressIsOurs?(node: NodeRecord): Promise<boolean>;
}

/** Pre-auth keys: minted, checked at registration, marked used. */
export interface AuthKeyBackend {
  /** Mints a key; returns its text, which only the caller ever sees (the store keeps a hash). */
  create(opts?: NewAuthKeyOptions): Promise<{ key: string; record: AuthKeyRecord }>;
  /** Checks a presented key; does not mark it used. */
  check(key: string, now?: Date): Promise<AuthKeyVerdict>;
  /** Records that `nodeId` registered with the key. */
  markUsed(record: AuthKeyRecord, nodeId: number): Promise<void>;
}
