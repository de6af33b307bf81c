// Data files for the SQL tests and benchmark, written by DuckDB itself (COPY … TO), and the
// checksum query run on them: the same query on the local file and on the copy read from a peer
// must give the same row, which covers every byte a reader used (all columns are summed).
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { DuckDBInstance } from '@duckdb/node-api';

export type Format = 'parquet' | 'csv' | 'json';

/** Rows per MB (10^6 bytes) of file, measured with DuckDB 1.5.5 on the table below. */
const ROWS_PER_MB: Record<Format, number> = { parquet: 22_300, csv: 15_700, json: 11_800 };

/** The reader for a file of `format` at `url` (a path or an http:// URL). */
export function reader(format: Format, url: string): string {
  const q = `'${url.replace(/'/g, "''")}'`;
  return format === 'parquet'
    ? `read_parquet(${q})`
    : format === 'csv'
      ? `read_csv(${q})`
      : `read_json(${q})`;
}

/**
 * Row count and sums over every column: an 8-byte id, a 62-bit hash, a 32-character string
 * (summed through hash()) and a small integer. Every reader infers BIGINT for the numbers (a
 * full 64-bit hash would be read from CSV as DOUBLE, whose sum depends on the order the
 * threads add in), so the sums are exact and the local and remote reads must agree.
 */
export function checksumSql(format: Format, url: string): string {
  return (
    'SELECT count(*) AS n, sum(id) AS ids, sum(h) AS hs, sum(hash(s)) AS strs, sum(k) AS ks ' +
    `FROM ${reader(format, url)}`
  );
}

export interface DataFile {
  format: Format;
  path: string;
  bytes: number;
  /** checksumSql on the local file. */
  checksum: Record<string, unknown>;
}

/** Writes `data.<format>` of about `mb` MB into `dir` and computes its checksum locally. */
export async function makeDataFile(dir: string, format: Format, mb: number): Promise<DataFile> {
  const path = join(dir, `data.${format}`);
  const rows = Math.round(mb * ROWS_PER_MB[format]);
  const db = await DuckDBInstance.create(':memory:');
  const c = await db.connect();
  try {
    await c.run(
      `COPY (SELECT i AS id, (hash(i) >> 2)::BIGINT AS h, md5(i::VARCHAR) AS s, i % 1000 AS k FROM range(${rows}) t(i)) ` +
        `TO '${path}' (FORMAT ${format})`,
    );
    const checksum = (await c.runAndReadAll(checksumSql(format, path))).getRowObjectsJson()[0] as Record<
      string,
      unknown
    >;
    return { format, path, bytes: statSync(path).size, checksum };
  } finally {
    c.closeSync();
    db.closeSync();
  }
}
