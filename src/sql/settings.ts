// Points DuckDB's proxy settings at the node's loopback proxy, and puts the user's back.
//
// A table function cannot run SQL on its own connection (that connection is busy running it),
// and @duckdb/node-api has no synchronous way to change a setting, so the change runs on a
// second connection of the same database while the SQL thread waits (BlockingSql). The thread
// cannot see a promise settle while it blocks: see blocking-sql.ts for how the wait ends.
import type { BlockingSql } from './blocking-sql.js';

/** The three settings DuckDB's httpfs (and the quack extension through it) reads for a proxy. */
export interface ProxySettings {
  http_proxy: string;
  http_proxy_username: string;
  http_proxy_password: string;
}

const KEYS = ['http_proxy', 'http_proxy_username', 'http_proxy_password'] as const;

/** An SQL string literal. */
export const literal = (s: string): string => `'${s.replace(/'/g, "''")}'`;

/** A double-quoted SQL identifier: safe for any name, including ones a server sends. */
export const ident = (s: string): string => `"${s.replace(/"/g, '""')}"`;

/**
 * Sets the proxy settings globally and returns the ones they replace. Blocks this thread; only
 * call it where the SQL thread may block (inside a table function).
 */
export function swapProxySettings(sql: BlockingSql, next: ProxySettings, timeoutMs: number): ProxySettings {
  const row = sql.select(
    `SELECT ${KEYS.map((k) => `current_setting('${k}') AS ${k}`).join(', ')}`,
    timeoutMs,
  )[0];
  const text = (k: string) => (typeof row?.[k] === 'string' ? (row[k] as string) : '');
  const saved = {
    http_proxy: text('http_proxy'),
    http_proxy_username: text('http_proxy_username'),
    http_proxy_password: text('http_proxy_password'),
  };
  setAll(sql, next, timeoutMs);
  return saved;
}

/** Puts back settings saved by {@link swapProxySettings}. Blocks like it. */
export function restoreProxySettings(sql: BlockingSql, saved: ProxySettings, timeoutMs: number): void {
  setAll(sql, saved, timeoutMs);
}

function setAll(sql: BlockingSql, values: ProxySettings, timeoutMs: number): void {
  // A failure is reported as a timeout without DuckDB's text, which could quote the password.
  sql.exec(KEYS.map((k) => `SET GLOBAL ${k} = ${literal(values[k])}`).join('; '), timeoutMs);
}
