// DuckDB's own extensions: `quackscale extensions fetch`'s fetcher against a PEP 503 index served
// here (wheel, sha256, unpacking), the version it fetches for, and what installQuackscale and
// `quackscale sql` say when the extensions are missing.
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { crc32, deflateRawSync, gzipSync } from 'node:zlib';
import { DuckDBInstance } from '@duckdb/node-api';
import { afterAll, describe, expect, it } from 'vitest';
import {
  ExtensionFetchError,
  fetchDuckdbExtensions,
  readZip,
  wheelName,
} from '../../src/sql/extension-fetch.js';
import {
  cachedExtensionPath,
  DUCKDB_VERSION,
  EXTENSION_NAMES,
  type ExtensionName,
  missingExtensionHint,
} from '../../src/sql/extensions.js';
import { installQuackscale } from '../../src/sql/index.js';
import { buildForNode, extensionPath } from './build.js';

const dirs: string[] = [];
const tmp = (p: string) => {
  const d = mkdtempSync(join(tmpdir(), p));
  dirs.push(d);
  return d;
};
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** A zip archive (APPNOTE.TXT): each entry deflated, or stored when `stored`. */
function zip(entries: { name: string; data: Buffer; stored?: boolean }[]): Buffer {
  const locals: Buffer[] = [];
  const central: Buffer[] = [];
  let offset = 0;
  for (const e of entries) {
    const name = Buffer.from(e.name);
    const body = e.stored ? e.data : deflateRawSync(e.data);
    const head = Buffer.alloc(30);
    head.writeUInt32LE(0x04034b50, 0);
    head.writeUInt16LE(e.stored ? 0 : 8, 8);
    head.writeUInt32LE(crc32(e.data), 14);
    head.writeUInt32LE(body.length, 18);
    head.writeUInt32LE(e.data.length, 22);
    head.writeUInt16LE(name.length, 26);
    const dir = Buffer.alloc(46);
    dir.writeUInt32LE(0x02014b50, 0);
    dir.writeUInt16LE(e.stored ? 0 : 8, 10);
    dir.writeUInt32LE(crc32(e.data), 16);
    dir.writeUInt32LE(body.length, 20);
    dir.writeUInt32LE(e.data.length, 24);
    dir.writeUInt16LE(name.length, 28);
    dir.writeUInt32LE(offset, 42);
    locals.push(head, name, body);
    central.push(dir, name);
    offset += 30 + name.length + body.length;
  }
  const cd = Buffer.concat(central);
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(entries.length, 8);
  end.writeUInt16LE(entries.length, 10);
  end.writeUInt32LE(cd.length, 12);
  end.writeUInt32LE(offset, 16);
  return Buffer.concat([...locals, cd, end]);
}

/** A stand-in extension binary and the wheel carrying it (gzipped for quack, as older repacks did). */
function fakeWheel(name: ExtensionName): { binary: Buffer; wheel: Buffer } {
  const binary = Buffer.from(`${name} extension `.repeat(5000));
  const inner = `duckdb_extension_${name}/extensions/v${DUCKDB_VERSION}/${name}.duckdb_extension`;
  const wheel = zip([
    { name: `duckdb_extension_${name}/__init__.py`, data: Buffer.from(''), stored: true },
    name === 'quack' ? { name: `${inner}.gz`, data: gzipSync(binary) } : { name: inner, data: binary },
    { name: `duckdb_extension_${name}-${DUCKDB_VERSION}.dist-info/METADATA`, data: Buffer.from('Name: x') },
  ]);
  return { binary, wheel };
}

/** A PEP 503 index of the fake wheels; `digest` can lie. */
async function index(digest: (real: string) => string = (d) => d) {
  const wheels = new Map(EXTENSION_NAMES.map((n) => [n, fakeWheel(n)]));
  const gets: string[] = [];
  const srv = http.createServer((req, res) => {
    gets.push(req.url ?? '');
    const page = /^\/simple\/duckdb-extension-(\w+)\/$/.exec(req.url ?? '');
    const file = /^\/files\/(.+\.whl)$/.exec(req.url ?? '');
    const name = page?.[1] as ExtensionName | undefined;
    if (name && wheels.has(name)) {
      const w = wheels.get(name)!.wheel;
      const sha = digest(createHash('sha256').update(w).digest('hex'));
      res.end(
        `<html><body><a href="../../files/${wheelName(name)}#sha256=${sha}">${wheelName(name)}</a></body></html>`,
      );
      return;
    }
    const hit = file && EXTENSION_NAMES.find((n) => wheelName(n) === file[1]);
    if (hit) res.end(wheels.get(hit)!.wheel);
    else res.writeHead(404).end();
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(srv.address() as AddressInfo).port}/simple`;
  return { wheels, gets, url, close: () => new Promise((r) => srv.close(r)) };
}

describe('extensions fetch', () => {
  it('downloads each wheel from the index, checks its sha256, unpacks the extension, then does nothing', async () => {
    const idx = await index();
    try {
      const dir = tmp('qs-extcache-');
      const downloads: string[] = [];
      const env = { PIP_INDEX_URL: idx.url };
      const paths = await fetchDuckdbExtensions({ dir, env, onDownload: (w) => downloads.push(w) });
      expect([...paths.keys()]).toEqual(['httpfs', 'quack', 'ducklake']);
      for (const name of EXTENSION_NAMES) {
        expect(paths.get(name)).toBe(cachedExtensionPath(dir, name));
        expect(readFileSync(paths.get(name)!).equals(idx.wheels.get(name)!.binary)).toBe(true);
        expect(readFileSync(join(dir, 'wheels', wheelName(name))).equals(idx.wheels.get(name)!.wheel)).toBe(
          true,
        );
      }
      expect(downloads).toEqual(EXTENSION_NAMES.map(wheelName));
      const before = idx.gets.length;
      await fetchDuckdbExtensions({ dir, env, onDownload: (w) => downloads.push(w) });
      expect([idx.gets.length, downloads.length]).toEqual([before, 3]);
      // A wheel at hand (the cache's wheels/) is unpacked again without the network.
      rmSync(paths.get('ducklake')!);
      await fetchDuckdbExtensions({ dir, env: { PIP_INDEX_URL: 'http://127.0.0.1:1/simple' } });
      expect(readFileSync(paths.get('ducklake')!).equals(idx.wheels.get('ducklake')!.binary)).toBe(true);
    } finally {
      await idx.close();
    }
  });

  it('refuses a wheel whose sha256 differs from the index, and says when the index has none or is unreachable', async () => {
    const lying = await index(() => '0'.repeat(64));
    try {
      await expect(
        fetchDuckdbExtensions({ dir: tmp('qs-extcache-'), env: { PIP_INDEX_URL: lying.url } }),
      ).rejects.toThrow(/sha256 does not match the index/);
      await expect(
        fetchDuckdbExtensions({
          dir: tmp('qs-extcache-'),
          env: { PIP_INDEX_URL: `${lying.url}/nothing-here` },
        }),
      ).rejects.toThrow(/HTTP 404/);
      await expect(
        fetchDuckdbExtensions({
          dir: tmp('qs-extcache-'),
          env: { PIP_INDEX_URL: 'http://127.0.0.1:1/simple' },
        }),
      ).rejects.toBeInstanceOf(ExtensionFetchError);
    } finally {
      await lying.close();
    }
  });

  it('reads stored and deflated zip entries and refuses a corrupt one', () => {
    const data = Buffer.from('x'.repeat(1000));
    const z = zip([
      { name: 'a', data, stored: true },
      { name: 'b', data },
    ]);
    const entries = readZip(z);
    expect(entries.get('a')!().equals(data) && entries.get('b')!().equals(data)).toBe(true);
    const bad = Buffer.from(z);
    bad[30 + 1 + 10] ^= 0xff; // a byte of a's stored data
    expect(() => readZip(bad).get('a')!()).toThrow(/CRC mismatch/);
    expect(() => readZip(Buffer.from('not a zip at all, not at all'))).toThrow(/no end of central directory/);
  });
});

describe('missing extensions are named, with the command that fetches them', () => {
  it('DUCKDB_VERSION is the version of the DuckDB quackscale runs', async () => {
    const c = await (await DuckDBInstance.create()).connect();
    const v = (await c.runAndReadAll('SELECT library_version FROM pragma_version()')).getRows()[0]![0];
    expect(v).toBe(`v${DUCKDB_VERSION}`);
    c.closeSync();
  });

  it("installQuackscale warns when they are missing, loads them with { extensions }, and DuckDB's errors get a hint", async () => {
    const instance = await DuckDBInstance.create(':memory:', {
      extension_directory: tmp('qs-noext-'),
      autoinstall_known_extensions: 'false',
    });
    const c = await instance.connect();
    const warnings: string[] = [];
    const r = await installQuackscale(c, { instance, onWarning: (m) => warnings.push(m) });
    expect(r).toEqual({ loaded: [], missing: ['httpfs', 'quack', 'ducklake'] });
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toContain("DuckDB's httpfs, quack, ducklake extensions are not installed here");
    expect(warnings[0]).toContain("Run 'npx quackscale extensions fetch' once");
    for (const [sql, name] of [
      ['LOAD quack', 'quack'],
      ["FROM read_csv('http://127.0.0.1:1/x.csv')", 'httpfs'],
      ["ATTACH 'ducklake:/nonexistent/x.ducklake' AS l", 'ducklake'],
    ] as const) {
      const message = await c.run(sql).then(
        () => '',
        (err: Error) => err.message,
      );
      expect(missingExtensionHint(message), message).toBe(
        `${name} is not installed here: run 'npx quackscale extensions fetch' once to cache it.`,
      );
    }
    expect(missingExtensionHint('Parser Error: syntax error at or near "FROM"')).toBeUndefined();
    c.closeSync();
  });

  it('with the cache at hand, installQuackscale loads all three and warns of nothing', async () => {
    let cache: string;
    try {
      cache = join(dirname(extensionPath('httpfs')), '../../..');
    } catch (err) {
      if (process.env.CI === 'true') throw err;
      console.warn(`skipped: DuckDB extensions unavailable (${(err as Error).message.split('\n')[0]})`);
      return;
    }
    const instance = await DuckDBInstance.create(':memory:', { extension_directory: tmp('qs-noext-') });
    const c = await instance.connect();
    const warnings: string[] = [];
    const r = await installQuackscale(c, { instance, extensions: cache, onWarning: (m) => warnings.push(m) });
    expect([r, warnings]).toEqual([{ loaded: ['httpfs', 'quack', 'ducklake'], missing: [] }, []]);
    c.closeSync();
  });
});

describe('quackscale sql without the extensions', () => {
  const build = buildForNode('extensions');
  it('says which are missing and names the command, before and after the error DuckDB gives', async () => {
    const empty = tmp('qs-noext-');
    const r = await promisify(execFile)(
      process.execPath,
      [join(build, 'cli/main.js'), 'sql', '--extensions', empty, '-c', 'LOAD quack'],
      { env: { ...process.env, HOME: tmp('qs-home-') }, timeout: 60_000 },
    ).then(
      (x) => ({ code: 0, ...x }),
      (e: { code: number; stdout: string; stderr: string }) => e,
    );
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`warning: no DuckDB ${DUCKDB_VERSION} extensions in ${empty}`);
    expect(r.stderr).toContain("warning: DuckDB's httpfs, quack, ducklake extensions are not installed here");
    expect(r.stderr).toContain('Extension "quack" is an existing extension');
    expect(r.stderr).toContain(
      "quack is not installed here: run 'npx quackscale extensions fetch' once to cache it.",
    );
  });
});
