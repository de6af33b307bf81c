// The coordinator's tables (one schema, `quackscale` by default, in the catalog the user chose):
// meta, users, nodes and preauth_keys, each row tagged with the coordinator that wrote it (its
// Noise public key), so several coordinators can share one DuckLake catalog. No private key is
// ever stored: the Noise private key stays in a 0600 file, pre-auth keys as SHA-256 hashes.
// Rows come back through COPY … (FORMAT json), so timestamps are read as epoch milliseconds.
// What a node re-sends on every connection (endpoints, Hostinfo) is not stored.
import { isIPv4, isIPv6 } from 'node:net';
import { PublicKey } from '../../control/keys.js';
import type { AuthKeyRecord } from '../../control/server/authkeys.js';
import type { NodeRecord, UserRecord } from '../../control/server/store.js';
import type { JsonRow } from '../blocking-sql.js';
import { ident, literal } from '../settings.js';

/** Where the tables are: `catalog`.`schema`. */
export interface TablePlace {
  catalog: string;
  schema: string;
}

/** The qualified name of one of the coordinator's tables. */
export const table = (p: TablePlace, name: 'meta' | 'users' | 'nodes' | 'preauth_keys'): string =>
  `${ident(p.catalog)}.${ident(p.schema)}.${ident(name)}`;

/** Creates the schema and the tables that are missing. */
export function createTables(p: TablePlace): string {
  return [
    `CREATE SCHEMA IF NOT EXISTS ${ident(p.catalog)}.${ident(p.schema)}`,
    `CREATE TABLE IF NOT EXISTS ${table(p, 'meta')} (coordinator VARCHAR, key VARCHAR, value VARCHAR)`,
    `CREATE TABLE IF NOT EXISTS ${table(p, 'users')} (coordinator VARCHAR, id BIGINT, login_name VARCHAR, created TIMESTAMPTZ)`,
    `CREATE TABLE IF NOT EXISTS ${table(p, 'nodes')} (id BIGINT, name VARCHAR, hostname VARCHAR, ` +
      'ipv4 VARCHAR, ipv6 VARCHAR, node_key VARCHAR, machine_key VARCHAR, disco_key VARCHAR, user_id BIGINT, ' +
      'tags VARCHAR[], ephemeral BOOLEAN, auth_key_id VARCHAR, created TIMESTAMPTZ, last_seen TIMESTAMPTZ, ' +
      'key_expiry TIMESTAMPTZ, stable_id VARCHAR, coordinator VARCHAR)',
    `CREATE TABLE IF NOT EXISTS ${table(p, 'preauth_keys')} (id VARCHAR, reusable BOOLEAN, ephemeral BOOLEAN, ` +
      'tags VARCHAR[], created TIMESTAMPTZ, expires TIMESTAMPTZ, used_by BIGINT[], revoked BOOLEAN, ' +
      'hash VARCHAR, coordinator VARCHAR)',
  ].join('; ');
}

const ts = (iso: string | null): string => (iso === null ? 'NULL' : `${literal(iso)}::TIMESTAMPTZ`);
const list = (xs: readonly string[]): string => `[${xs.map(literal).join(', ')}]::VARCHAR[]`;
const str = (s: string | null): string => (s === null ? 'NULL' : literal(s));

/** The node table's columns, in order. */
const NODE_FIELDS = [
  'id',
  'name',
  'hostname',
  'ipv4',
  'ipv6',
  'node_key',
  'machine_key',
  'disco_key',
  'user_id',
  'tags',
  'ephemeral',
  'auth_key_id',
  'created',
  'last_seen',
  'key_expiry',
  'stable_id',
  'coordinator',
] as const;

/** The columns of a node row, in table order, as SQL values. */
export function nodeValues(n: NodeRecord, coordinator: string): string {
  return nodeSqlValues(n, coordinator).join(', ');
}

/** `column = value, …` for an UPDATE of a node row (the row keeps its row id). */
export function nodeAssignments(n: NodeRecord, coordinator: string): string {
  const values = nodeSqlValues(n, coordinator);
  return NODE_FIELDS.map((f, i) => `${f} = ${values[i]}`).join(', ');
}

function nodeSqlValues(n: NodeRecord, coordinator: string): string[] {
  return [
    n.id,
    str(n.givenName),
    str(n.hostname),
    str(n.ipv4),
    str(n.ipv6),
    str(n.nodeKey),
    str(n.machineKey),
    str(n.discoKey),
    n.userId,
    list(n.tags),
    n.ephemeral,
    str(n.authKeyId),
    ts(n.created),
    ts(n.lastSeen),
    ts(n.keyExpiry),
    str(n.stableId),
    str(coordinator),
  ].map(String);
}

/** What of a node is stored: a change here is worth a write. */
export function storedPart(n: NodeRecord): string {
  return nodeValues(n, '');
}

/** The SELECT list that reads nodes back (timestamps as epoch ms). */
export const NODE_COLUMNS =
  'id, name, hostname, ipv4, ipv6, node_key, machine_key, disco_key, user_id, tags, ephemeral, auth_key_id, ' +
  'epoch_ms(created) AS created, epoch_ms(last_seen) AS last_seen, epoch_ms(key_expiry) AS key_expiry, ' +
  'stable_id, coordinator';

const iso = (v: unknown): string | null =>
  v === null || v === undefined ? null : new Date(Number(v)).toISOString();

/** A node row that cannot be served; names the row. */
export class BadRowError extends Error {
  constructor(where: string, row: JsonRow, problem: string) {
    super(`${where} row id=${String(row.id)} (name ${JSON.stringify(row.name)}): ${problem}`);
    this.name = 'BadRowError';
  }
}

/** The 100.64.0.0/10 test of ipam.ts, for addresses read from a table. */
function inCgnat(a: string): boolean {
  const [x, y] = a.split('.').map(Number);
  return isIPv4(a) && x === 100 && y !== undefined && y >= 64 && y < 128;
}

/**
 * Reads this coordinator's node rows, refusing the table if any row cannot be served: a missing
 * or malformed key, an address outside the tailnet's ranges, or one another row also has
 * (`all` holds every coordinator's rows, so addresses are checked across all of them).
 */
export function readNodes(where: string, own: JsonRow[], all: JsonRow[]): NodeRecord[] {
  const seen = new Map<string, JsonRow>();
  const unique = (row: JsonRow, what: string, value: string) => {
    const other = seen.get(`${what}=${value}`);
    if (other && other !== row) {
      throw new BadRowError(where, row, `${what} ${value} is also row id=${String(other.id)}'s`);
    }
    seen.set(`${what}=${value}`, row);
  };
  for (const row of all) {
    const bad = (problem: string): never => {
      throw new BadRowError(where, row, problem);
    };
    const text = (col: string): string => {
      const v = row[col];
      if (typeof v !== 'string' || v === '') bad(`${col} is empty`);
      return v as string;
    };
    const ipv4 = text('ipv4');
    if (!inCgnat(ipv4)) bad(`ipv4 ${ipv4} is not in 100.64.0.0/10`);
    const ipv6 = text('ipv6');
    if (!isIPv6(ipv6) || !ipv6.toLowerCase().startsWith('fd7a:115c:a1e0:')) {
      bad(`ipv6 ${ipv6} is not in fd7a:115c:a1e0::/48`);
    }
    for (const [col, kind] of [
      ['node_key', 'node'],
      ['machine_key', 'machine'],
      ['disco_key', 'disco'],
    ] as const) {
      try {
        PublicKey.parse(kind, text(col));
      } catch (err) {
        bad(`${col}: ${(err as Error).message}`);
      }
    }
    unique(row, 'ipv4', ipv4);
    unique(row, 'ipv6', ipv6);
    unique(row, 'node_key', text('node_key'));
  }
  for (const row of own) {
    const bad = (problem: string): never => {
      throw new BadRowError(where, row, problem);
    };
    if (!Number.isSafeInteger(row.id) || (row.id as number) < 1) bad('id is not a positive integer');
    if (!Number.isSafeInteger(row.user_id) || (row.user_id as number) < 1)
      bad('user_id is not a positive integer');
    if (typeof row.hostname !== 'string' || typeof row.name !== 'string' || row.name === '')
      bad('name or hostname is empty');
    if (typeof row.created !== 'number') bad('created is empty');
    unique(row, 'id', String(row.id));
    unique(row, 'name', String(row.name));
    unique(row, 'machine_key', String(row.machine_key));
  }
  return own.map((r) => ({
    id: r.id as number,
    stableId: typeof r.stable_id === 'string' ? r.stable_id : `n${String(r.id)}`,
    machineKey: r.machine_key as string,
    nodeKey: r.node_key as string,
    discoKey: r.disco_key as string,
    hostname: r.hostname as string,
    givenName: r.name as string,
    userId: r.user_id as number,
    tags: Array.isArray(r.tags) ? r.tags.map(String) : [],
    ipv4: r.ipv4 as string,
    ipv6: r.ipv6 as string,
    endpoints: [],
    hostinfo: null,
    created: iso(r.created) as string,
    lastSeen: iso(r.last_seen),
    keyExpiry: iso(r.key_expiry),
    ephemeral: r.ephemeral === true,
    authKeyId: typeof r.auth_key_id === 'string' ? r.auth_key_id : null,
    capVersion: 0,
    homeDERP: 0,
  }));
}

/** Users named at interactive approval. */
export function readUsers(rows: JsonRow[]): UserRecord[] {
  return rows.map((r) => ({
    id: Number(r.id),
    loginName: String(r.login_name),
    created: iso(r.created) as string,
  }));
}

/** The SELECT list that reads pre-auth keys back. */
export const KEY_COLUMNS =
  'id, hash, reusable, ephemeral, tags, epoch_ms(created) AS created, epoch_ms(expires) AS expires, used_by, revoked';

export function readKey(r: JsonRow): AuthKeyRecord {
  return {
    id: String(r.id),
    hash: String(r.hash),
    reusable: r.reusable === true,
    ephemeral: r.ephemeral === true,
    tags: Array.isArray(r.tags) ? r.tags.map(String) : [],
    created: iso(r.created) as string,
    expires: iso(r.expires),
    usedBy: Array.isArray(r.used_by) ? r.used_by.map(Number) : [],
    revoked: r.revoked === true,
  };
}

/** The columns of a pre-auth key row, in table order, as SQL values. */
export function keyValues(k: AuthKeyRecord, coordinator: string): string {
  return [
    str(k.id),
    k.reusable,
    k.ephemeral,
    list(k.tags),
    ts(k.created),
    ts(k.expires),
    `[${k.usedBy.join(', ')}]::BIGINT[]`,
    k.revoked,
    str(k.hash),
    str(coordinator),
  ].join(', ');
}
