// The quackscale/sql entry re-exports index.ts behind the check for the optional peer
// @duckdb/node-api (the case where it is missing runs in scripts/check-package.sh, on a packed
// and installed package): here, that it exports exactly what index.ts does, and that the
// version it asks users to install is the one package.json pins.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { DUCKDB_NODE_API_VERSION } from '../../src/sql/duckdb-peer.js';

describe('quackscale/sql entry', () => {
  it('exports every value index.ts exports, and the peer check', async () => {
    const index = Object.keys(await import('../../src/sql/index.js')).sort();
    const entry = Object.keys(await import('../../src/sql/entry.js')).sort();
    expect(entry).toEqual([...index, 'DUCKDB_NODE_API_VERSION', 'DuckDBMissingError'].sort());
  });

  it('names the @duckdb/node-api version package.json pins as the optional peer', () => {
    const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
      peerDependencies: Record<string, string>;
      peerDependenciesMeta: Record<string, { optional?: boolean }>;
      dependencies: Record<string, string>;
    };
    expect(pkg.peerDependencies['@duckdb/node-api']).toBe(DUCKDB_NODE_API_VERSION);
    expect(pkg.peerDependenciesMeta['@duckdb/node-api']?.optional).toBe(true);
    expect(pkg.dependencies['@duckdb/node-api']).toBeUndefined();
  });
});
