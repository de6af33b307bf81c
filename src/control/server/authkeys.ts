/**
 * Pre-auth keys for the embedded server, one file per key under `<state>/authkeys/`, so the
 * CLI can mint a key while the server runs. Only a SHA-256 of the secret is stored; the key
 * text (`qskey-auth-<id>-<secret>`, in the manner of Headscale's hskey-auth-) is shown once.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { StateError } from '../errors.js';
import type { AuthKeyBackend } from './state-store.js';

export interface AuthKeyRecord {
  id: string;
  hash: string;
  reusable: boolean;
  ephemeral: boolean;
  tags: string[];
  created: string;
  /** RFC 3339 or null for never. */
  expires: string | null;
  usedBy: number[];
  revoked: boolean;
}

export interface NewAuthKeyOptions {
  reusable?: boolean;
  ephemeral?: boolean;
  tags?: string[];
  /** Lifetime in ms (default 24 h; 0 = never expires). */
  ttlMs?: number;
}

const KEY_RE = /^qskey-auth-([0-9a-f]{12})-([0-9a-f]{48})$/;

function sha256(s: string): string {
  return createHash('sha256').update(s).digest('hex');
}

/** Why a key was refused; the server returns this text in RegisterResponse.Error. */
export type AuthKeyVerdict = { ok: true; record: AuthKeyRecord } | { ok: false; reason: string };

/** A new key and its record (which holds only a hash of the secret); every store mints this way. */
export function mintAuthKey(opts: NewAuthKeyOptions = {}): { key: string; record: AuthKeyRecord } {
  const id = randomBytes(6).toString('hex');
  const secret = randomBytes(24).toString('hex');
  const ttl = opts.ttlMs ?? 24 * 3600_000;
  const record: AuthKeyRecord = {
    id,
    hash: sha256(secret),
    reusable: opts.reusable ?? false,
    ephemeral: opts.ephemeral ?? false,
    tags: opts.tags ?? [],
    created: new Date().toISOString(),
    expires: ttl > 0 ? new Date(Date.now() + ttl).toISOString() : null,
    usedBy: [],
    revoked: false,
  };
  return { key: `qskey-auth-${id}-${secret}`, record };
}

/** The id part of a key's text, or undefined when it is not a key of ours. */
export function authKeyId(key: string): string | undefined {
  return KEY_RE.exec(key)?.[1];
}

/** Whether `key` is the one `record` was minted for, and still good for a registration. */
export function verifyAuthKey(key: string, record: AuthKeyRecord, now = new Date()): AuthKeyVerdict {
  const m = KEY_RE.exec(key);
  if (!m || m[1] !== record.id) return { ok: false, reason: 'invalid auth key' };
  const want = Buffer.from(record.hash, 'hex');
  const got = Buffer.from(sha256(m[2]!), 'hex');
  if (want.length !== got.length || !timingSafeEqual(want, got))
    return { ok: false, reason: 'invalid auth key' };
  if (record.revoked) return { ok: false, reason: 'auth key revoked' };
  if (record.expires !== null && Date.parse(record.expires) <= now.getTime()) {
    return { ok: false, reason: 'auth key expired' };
  }
  if (!record.reusable && record.usedBy.length > 0) return { ok: false, reason: 'auth key already used' };
  return { ok: true, record };
}

/** The auth-key directory. */
export class AuthKeyStore implements AuthKeyBackend {
  readonly dir: string;
  constructor(stateDir: string) {
    this.dir = join(stateDir, 'authkeys');
  }

  #path(id: string): string {
    return join(this.dir, `${id}.json`);
  }

  /** Mints a key; returns its text, which is not stored anywhere. */
  async create(opts: NewAuthKeyOptions = {}): Promise<{ key: string; record: AuthKeyRecord }> {
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
    const minted = mintAuthKey(opts);
    await this.#write(minted.record);
    return minted;
  }

  async #write(r: AuthKeyRecord): Promise<void> {
    try {
      await writeFile(this.#path(r.id), `${JSON.stringify(r)}\n`, { mode: 0o600 });
    } catch (err) {
      throw new StateError(`writing auth key ${r.id}: ${(err as Error).message}`, { cause: err });
    }
  }

  /** Checks a presented key (fresh from disk each time). Does not mark it used. */
  async check(key: string, now = new Date()): Promise<AuthKeyVerdict> {
    const id = authKeyId(key);
    if (!id) return { ok: false, reason: 'invalid auth key' };
    let record: AuthKeyRecord;
    try {
      record = JSON.parse(await readFile(this.#path(id), 'utf8')) as AuthKeyRecord;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { ok: false, reason: 'invalid auth key' };
      throw new StateError(`reading auth key ${id}: ${(err as Error).message}`, { cause: err });
    }
    return verifyAuthKey(key, record, now);
  }

  /** Records that `nodeId` registered with the key. */
  async markUsed(record: AuthKeyRecord, nodeId: number): Promise<void> {
    if (!record.usedBy.includes(nodeId)) record.usedBy.push(nodeId);
    await this.#write(record);
  }
}
