// The control server's store in DuckDB tables (schema.ts), for a coordinator started from SQL.
// It runs in the worker, beside the control server, and reaches the tables through the SQL
// thread (sql-channel.ts). The server hands it a snapshot after every change; it writes what
// changed, one transaction per save, retrying when another coordinator sharing a DuckLake
// catalog committed first. A new node's address is checked after its commit: rows get row ids
// in commit order, so of two coordinators that handed out the same address, the one whose row
// has the lower id keeps it and the other picks again (addressIsOurs).
import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { type MachinePrivate, PrivateKey } from '../../control/keys.js';
import {
  type AuthKeyRecord,
  type AuthKeyVerdict,
  authKeyId,
  mintAuthKey,
  type NewAuthKeyOptions,
  verifyAuthKey,
} from '../../control/server/authkeys.js';
import type { AuthKeyBackend, ControlStateStore } from '../../control/server/state-store.js';
import type { NodeRecord, ServerStateData } from '../../control/server/store.js';
import { ident, literal } from '../settings.js';
import {
  createTables,
  KEY_COLUMNS,
  keyValues,
  NODE_COLUMNS,
  nodeAssignments,
  nodeValues,
  readKey,
  readNodes,
  readUsers,
  storedPart,
  type TablePlace,
  table,
} from './schema.js';
import { CoordinatorSqlError, type SqlChannel } from './sql-channel.js';

/** Where the user asked for the tables; at most one of `catalog` and `database`. */
export interface StoreChoice {
  /** An attached catalog (a DuckDB file, or a DuckLake catalog shared by several coordinators). */
  catalog?: string;
  /** A DuckDB file of the coordinator's own, attached as `quackscale_coordinator`. */
  database?: string;
  /** The schema that holds the tables (default `quackscale`). */
  schema?: string;
}

/** A store that cannot be opened as asked; the message says what to change. */
export class CoordinatorStoreError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'CoordinatorStoreError';
  }
}

/** The alias a dedicated file is attached under. */
const DEDICATED_ALIAS = 'quackscale_coordinator';
const NOISE_FILE = 'coordinator-noise.key';
const RETRIES = 8;

/** Which catalog the tables go into, checked: attached, writable; and whether it is a DuckLake. */
async function resolvePlace(
  sql: SqlChannel,
  choice: StoreChoice,
): Promise<TablePlace & { ducklake: boolean }> {
  const schema = choice.schema ?? 'quackscale';
  if (choice.catalog && choice.database) {
    throw new CoordinatorStoreError('give catalog or database, not both');
  }
  let catalog = choice.catalog;
  if (choice.database) {
    const attached = await sql.select(
      `SELECT database_name, path FROM duckdb_databases() WHERE path = ${literal(choice.database)} ` +
        `OR database_name = ${literal(DEDICATED_ALIAS)}`,
    );
    const have = attached.find((d) => d.path === choice.database);
    // Checked here: an ATTACH that fails while SQL waits on the coordinator cannot say why.
    if (!have && attached.length > 0) {
      throw new CoordinatorStoreError(
        `'${DEDICATED_ALIAS}' is already attached to ${String(attached[0]?.path)}: DETACH it, or pass that file`,
      );
    }
    catalog = have ? String(have.database_name) : DEDICATED_ALIAS;
    if (!have) await sql.write(`ATTACH ${literal(choice.database)} AS ${ident(DEDICATED_ALIAS)}`, false);
  }
  const [db] = await sql.select(
    catalog === undefined
      ? 'SELECT database_name, readonly, type FROM duckdb_databases() WHERE database_name = current_database()'
      : `SELECT database_name, readonly, type FROM duckdb_databases() WHERE database_name = ${literal(catalog)}`,
  );
  if (!db) {
    throw new CoordinatorStoreError(
      `catalog '${catalog}' is not attached: ATTACH it first (e.g. ATTACH 'ducklake:meta.ducklake' AS ${catalog}), ` +
        'or leave catalog out to use this database',
    );
  }
  if (db.readonly === true)
    throw new CoordinatorStoreError(`catalog '${String(db.database_name)}' is read-only`);
  return { catalog: String(db.database_name), schema, ducklake: db.type === 'ducklake' };
}

/** The coordinator's Noise key, from its 0600 file (made on first use): never in a table. */
async function noiseKey(dir: string): Promise<MachinePrivate> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  await chmod(dir, 0o700);
  const file = join(dir, NOISE_FILE);
  try {
    return PrivateKey.parse('machine', (await readFile(file, 'utf8')).trim());
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') {
      // Not the parser's text: it could quote the file.
      throw new CoordinatorStoreError(`${file} holds no usable key`, { cause: err });
    }
  }
  const key = PrivateKey.generate('machine');
  await writeFile(file, `${key.toStateText()}\n`, { mode: 0o600, flag: 'wx' });
  return key;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Nodes, users and pre-auth keys in DuckDB tables; the Noise key in a file of `dir`. */
export class DuckDBStateStore implements ControlStateStore, AuthKeyBackend {
  /** The stored part of each node as last written, by id. */
  private saved = new Map<number, string>();
  private savedUsers = 0;
  private savedCounters = '';
  private saving: Promise<void> = Promise.resolve();
  private closed = false;

  private constructor(
    private readonly sql: SqlChannel,
    readonly place: TablePlace,
    private readonly key: MachinePrivate,
  ) {}

  /** This coordinator's name in the tables: its Noise public key. */
  get coordinator(): string {
    return this.key.publicKey.toString();
  }

  /** `catalog.schema`, for messages. */
  get where(): string {
    return `${this.place.catalog}.${this.place.schema}`;
  }

  /** Resolves the catalog, creates the tables that are missing and loads the Noise key. */
  static async open(sql: SqlChannel, choice: StoreChoice, dir: string): Promise<DuckDBStateStore> {
    const { ducklake, ...place } = await resolvePlace(sql, choice);
    await sql.write(createTables(place));
    if (ducklake) {
      // Small inserts would otherwise be inlined into DuckLake's metadata; under concurrent
      // commits from several coordinators, rows of such inlined tables were seen to vanish
      // (test/sql/coordinator/shared-ducklake.test.ts). Parquet files for our schema only.
      await sql.write(
        `CALL ${ident(place.catalog)}.set_option('data_inlining_row_limit', 0, schema => ${literal(place.schema)})`,
        false,
      );
    }
    return new DuckDBStateStore(sql, place, await noiseKey(dir));
  }

  private mine(): string {
    return `coordinator = ${literal(this.coordinator)}`;
  }

  /** Reads this coordinator's state, refusing rows that cannot be served (schema.ts readNodes). */
  async load(): Promise<{ data: ServerStateData; noiseKey: MachinePrivate }> {
    const all = await this.sql.select(
      `SELECT ${NODE_COLUMNS} FROM ${table(this.place, 'nodes')} ORDER BY id`,
    );
    const own = all.filter((r) => r.coordinator === this.coordinator);
    const nodes = readNodes(`${this.where}.nodes`, own, all);
    const users = readUsers(
      await this.sql.select(
        `SELECT id, login_name, epoch_ms(created) AS created FROM ${table(this.place, 'users')} WHERE ${this.mine()}`,
      ),
    );
    const meta = new Map(
      (await this.sql.select(`SELECT key, value FROM ${table(this.place, 'meta')} WHERE ${this.mine()}`)).map(
        (r) => [String(r.key), Number(r.value)],
      ),
    );
    const data: ServerStateData = {
      version: 1,
      noiseKey: '', // in the coordinator's directory, never in a table
      nextNodeId: Math.max(meta.get('next_node_id') ?? 1, ...nodes.map((n) => n.id + 1)),
      nextAddress: meta.get('next_address') ?? 1,
      nodes,
      users,
    };
    for (const n of nodes) this.saved.set(n.id, storedPart(n));
    this.savedUsers = users.length;
    this.savedCounters = `${data.nextNodeId}/${data.nextAddress}`;
    await this.write(
      `DELETE FROM ${table(this.place, 'meta')} WHERE ${this.mine()} AND key = 'noise_public_key'; ` +
        `INSERT INTO ${table(this.place, 'meta')} VALUES (${literal(this.coordinator)}, 'noise_public_key', ${literal(this.coordinator)})`,
    );
    return { data, noiseKey: this.key };
  }

  /** One transaction, again after a conflict with another coordinator (a few times). */
  private async write(sql: string): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      try {
        await this.sql.write(sql);
        return;
      } catch (err) {
        if (!(err instanceof CoordinatorSqlError && err.conflict) || attempt >= RETRIES) throw err;
        await sleep(10 + Math.random() * 40 * attempt);
      }
    }
  }

  /** Stops writing: later saves are dropped (the server is closing). */
  close(): void {
    this.closed = true;
  }

  save(data: ServerStateData): Promise<void> {
    if (this.closed) return this.saving;
    const next = this.saving.then(() => this.persist(data));
    this.saving = next.catch(() => undefined);
    return next;
  }

  flush(): Promise<void> {
    return this.saving;
  }

  private async persist(data: ServerStateData): Promise<void> {
    const nodes = table(this.place, 'nodes');
    const stmts: string[] = [];
    const ids = new Set(data.nodes.map((n) => n.id));
    for (const id of this.saved.keys()) {
      if (!ids.has(id)) stmts.push(`DELETE FROM ${nodes} WHERE ${this.mine()} AND id = ${id}`);
    }
    for (const n of data.nodes) {
      const part = storedPart(n);
      const before = this.saved.get(n.id);
      if (before === part) continue;
      if (before === undefined) {
        stmts.push(`INSERT INTO ${nodes} VALUES (${nodeValues(n, this.coordinator)})`);
      } else {
        // An UPDATE keeps the row id, which the address check reads.
        stmts.push(
          `UPDATE ${nodes} SET ${nodeAssignments(n, this.coordinator)} WHERE ${this.mine()} AND id = ${n.id}`,
        );
      }
    }
    const users = data.users ?? [];
    for (const u of users.slice(this.savedUsers)) {
      stmts.push(
        `INSERT INTO ${table(this.place, 'users')} VALUES (${literal(this.coordinator)}, ${u.id}, ${literal(u.loginName)}, ${literal(u.created)}::TIMESTAMPTZ)`,
      );
    }
    const counters = `${data.nextNodeId}/${data.nextAddress}`;
    if (counters !== this.savedCounters) {
      const meta = table(this.place, 'meta');
      stmts.push(
        `DELETE FROM ${meta} WHERE ${this.mine()} AND key IN ('next_node_id', 'next_address')`,
        `INSERT INTO ${meta} VALUES (${literal(this.coordinator)}, 'next_node_id', '${data.nextNodeId}'), ` +
          `(${literal(this.coordinator)}, 'next_address', '${data.nextAddress}')`,
      );
    }
    if (stmts.length === 0) return;
    // What these statements write, taken now: `data` is live and may change during the write.
    const written = new Map(data.nodes.map((n) => [n.id, storedPart(n)]));
    const userCount = users.length;
    await this.write(stmts.join('; '));
    this.saved = written;
    this.savedUsers = userCount;
    this.savedCounters = counters;
  }

  /** The earliest committed row with the address wins (row ids are given in commit order). */
  async addressIsOurs(n: NodeRecord): Promise<boolean> {
    await this.saving;
    const [first] = await this.sql.select(
      `SELECT coordinator, id FROM ${table(this.place, 'nodes')} WHERE ipv4 = ${literal(n.ipv4)} ORDER BY rowid LIMIT 1`,
    );
    return first === undefined || (first.coordinator === this.coordinator && first.id === n.id);
  }

  async foreignAddresses(): Promise<Set<string>> {
    const rows = await this.sql.select(
      `SELECT ipv4 FROM ${table(this.place, 'nodes')} WHERE coordinator <> ${literal(this.coordinator)}`,
    );
    return new Set(rows.map((r) => String(r.ipv4)));
  }

  async create(opts: NewAuthKeyOptions = {}): Promise<{ key: string; record: AuthKeyRecord }> {
    const minted = mintAuthKey(opts);
    await this.write(
      `INSERT INTO ${table(this.place, 'preauth_keys')} VALUES (${keyValues(minted.record, this.coordinator)})`,
    );
    return minted;
  }

  /** Any coordinator's key is good here: they share the tailnet. */
  async check(key: string, now = new Date()): Promise<AuthKeyVerdict> {
    const id = authKeyId(key);
    if (!id) return { ok: false, reason: 'invalid auth key' };
    const [row] = await this.sql.select(
      `SELECT ${KEY_COLUMNS} FROM ${table(this.place, 'preauth_keys')} WHERE id = ${literal(id)} LIMIT 1`,
    );
    return row ? verifyAuthKey(key, readKey(row), now) : { ok: false, reason: 'invalid auth key' };
  }

  async markUsed(record: AuthKeyRecord, nodeId: number): Promise<void> {
    if (record.usedBy.includes(nodeId)) return;
    record.usedBy.push(nodeId);
    await this.write(
      `UPDATE ${table(this.place, 'preauth_keys')} SET used_by = [${record.usedBy.join(', ')}]::BIGINT[] ` +
        `WHERE id = ${literal(record.id)}`,
    );
  }
}
