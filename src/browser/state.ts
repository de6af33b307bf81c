/**
 * Where a page keeps its node's state: in memory (a new node per page load, best with an
 * ephemeral key) or in IndexedDB (the same node, keys and address across reloads). Both hold
 * the text the state file would (control/state.ts encodeState), keys included: IndexedDB is
 * readable by any script of the page's origin, which is the page's trust boundary anyway.
 */
import {
  type ControlState,
  type ControlStateStore,
  decodeState,
  encodeState,
  freshState,
} from '../control/state.js';

/** State that lives as long as the page. */
export class MemoryStateStore implements ControlStateStore {
  private text: string | undefined;

  async loadOrCreate(): Promise<ControlState> {
    return this.text === undefined ? freshState() : decodeState(this.text, 'memory state');
  }

  async save(state: ControlState): Promise<void> {
    this.text = encodeState(state);
  }

  async flush(): Promise<void> {}
}

const STORE = 'state';
const KEY = 'control';

// The few IndexedDB types used (the project compiles without the DOM library).
interface IdbRequest<T> {
  readonly result: T;
  readonly error: { message: string } | null;
  onsuccess: (() => void) | null;
  onerror: (() => void) | null;
}
interface IdbStore {
  get(key: string): IdbRequest<unknown>;
  put(value: string, key: string): IdbRequest<unknown>;
}
interface IdbDatabase {
  transaction(store: string, mode: 'readonly' | 'readwrite'): { objectStore(name: string): IdbStore };
  createObjectStore(name: string): unknown;
  close(): void;
}
interface IdbOpenRequest extends IdbRequest<IdbDatabase> {
  onupgradeneeded: (() => void) | null;
}
interface IdbFactory {
  open(name: string, version: number): IdbOpenRequest;
}

/** State in IndexedDB database `name` (one record), kept across page loads. */
export class IndexedDbStateStore implements ControlStateStore {
  private saving: Promise<void> = Promise.resolve();

  constructor(readonly name: string) {}

  private open(): Promise<IdbDatabase> {
    const idb = (globalThis as { indexedDB?: IdbFactory }).indexedDB;
    if (idb === undefined) return Promise.reject(new Error('this runtime has no IndexedDB'));
    return new Promise((resolve, reject) => {
      const req = idb.open(this.name, 1);
      req.onupgradeneeded = () => req.result.createObjectStore(STORE);
      req.onsuccess = () => resolve(req.result);
      req.onerror = () => reject(new Error(`IndexedDB ${this.name}: ${req.error?.message ?? 'open failed'}`));
    });
  }

  private async run<T>(mode: 'readonly' | 'readwrite', op: (s: IdbStore) => IdbRequest<T>): Promise<T> {
    const db = await this.open();
    try {
      return await new Promise<T>((resolve, reject) => {
        const req = op(db.transaction(STORE, mode).objectStore(STORE));
        req.onsuccess = () => resolve(req.result);
        req.onerror = () =>
          reject(new Error(`IndexedDB ${this.name}: ${req.error?.message ?? 'request failed'}`));
      });
    } finally {
      db.close();
    }
  }

  async loadOrCreate(): Promise<ControlState> {
    const text = await this.run<unknown>('readonly', (s) => s.get(KEY));
    return typeof text === 'string' ? decodeState(text, `IndexedDB ${this.name}`) : freshState();
  }

  save(state: ControlState): Promise<void> {
    const text = encodeState(state);
    const next = this.saving.then(() => this.run('readwrite', (s) => s.put(text, KEY)).then(() => undefined));
    this.saving = next.catch(() => undefined);
    return next;
  }

  async flush(): Promise<void> {
    await this.saving;
  }
}
