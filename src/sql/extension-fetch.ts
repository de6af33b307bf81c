/**
 * Fetches DuckDB's own httpfs, quack and ducklake extensions from PyPI's `duckdb-extension-*`
 * wheels into the cache (as scripts/fetch-duckdb-extensions.sh does, with nothing but Node): the
 * wheel for this platform from PyPI's simple index (PEP 503; `PIP_INDEX_URL` if set), checked
 * against the index's sha256, kept in `<cache>/wheels/`, and the extension file unpacked from it.
 * A wheel already in `WHEEL_DIR` or the cache saves the download.
 */
import { createHash } from 'node:crypto';
import { existsSync, readdirSync } from 'node:fs';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { crc32, gunzipSync, inflateRawSync } from 'node:zlib';
import {
  cachedExtensionPath,
  DUCKDB_VERSION,
  EXTENSION_NAMES,
  type ExtensionName,
  extensionCacheDir,
} from './extensions.js';

/** Thrown when a fetch fails: no wheel for this platform, no route to PyPI, a bad checksum. */
export class ExtensionFetchError extends Error {
  override readonly name = 'ExtensionFetchError';
}

/** PyPI's platform tags of the duckdb-extension wheels, by Node's platform and arch. */
const WHEEL_TAGS: Record<string, string> = {
  'linux x64': 'manylinux2014_x86_64',
  'linux arm64': 'manylinux2014_aarch64',
  'darwin arm64': 'macosx_11_0_arm64',
  'darwin x64': 'macosx_11_0_x86_64',
};

export interface FetchOptions {
  /** The cache to fill (default {@link extensionCacheDir}). */
  dir?: string;
  /** Told before each download, with the wheel's name. */
  onDownload?: (wheel: string) => void;
  env?: NodeJS.ProcessEnv;
}

/**
 * Makes sure httpfs, quack and ducklake are in the cache; returns their paths in load order.
 * A no-op once they are there.
 *
 * @example
 * const paths = await fetchDuckdbExtensions();   // Map { 'httpfs' => '/…/httpfs.duckdb_extension', … }
 */
export async function fetchDuckdbExtensions(opts: FetchOptions = {}): Promise<Map<ExtensionName, string>> {
  const env = opts.env ?? process.env;
  const dir = opts.dir ?? extensionCacheDir(env);
  const paths = new Map<ExtensionName, string>();
  for (const name of EXTENSION_NAMES) {
    const path = cachedExtensionPath(dir, name);
    if (!existsSync(path)) {
      const wheel = await obtainWheel(name, dir, env, opts.onDownload);
      await unpack(wheel, name, path);
    }
    paths.set(name, path);
  }
  return paths;
}

/** The wheel of `name` for this platform, as PyPI names it. */
export function wheelName(name: ExtensionName): string {
  const tag = WHEEL_TAGS[`${process.platform} ${process.arch}`];
  if (!tag)
    throw new ExtensionFetchError(
      `PyPI has no duckdb-extension wheels for ${process.platform} ${process.arch}`,
    );
  return `duckdb_extension_${name}-${DUCKDB_VERSION}-py3-none-${tag}.whl`;
}

/** The wheel's bytes: from WHEEL_DIR or the cache, else downloaded (and kept in the cache). */
async function obtainWheel(
  name: ExtensionName,
  dir: string,
  env: NodeJS.ProcessEnv,
  onDownload?: (wheel: string) => void,
): Promise<Buffer> {
  const want = wheelName(name);
  for (const d of [env.WHEEL_DIR, join(dir, 'wheels')]) {
    if (d && existsSync(d) && readdirSync(d).includes(want)) return readFile(join(d, want));
  }
  onDownload?.(want);
  const index = (env.PIP_INDEX_URL || 'https://pypi.org/simple').replace(/\/+$/, '');
  const page = await get(`${index}/duckdb-extension-${name}/`).then((b) => b.toString('utf8'));
  // PEP 503: <a href="URL#sha256=HEX">; the URL may be relative to the page.
  for (const [, href, digest] of page.matchAll(/href="([^"#]+)#sha256=([0-9a-f]{64})"/g)) {
    const url = new URL(href!.replace(/&amp;/g, '&'), `${index}/duckdb-extension-${name}/`);
    if (url.pathname.split('/').pop() !== want) continue;
    const data = await get(url.href);
    if (createHash('sha256').update(data).digest('hex') !== digest)
      throw new ExtensionFetchError(`${want}: sha256 does not match the index`);
    await mkdir(join(dir, 'wheels'), { recursive: true });
    await writeFile(join(dir, 'wheels', want), data);
    return data;
  }
  throw new ExtensionFetchError(`${want} is not in ${index}/duckdb-extension-${name}/`);
}

async function get(url: string): Promise<Buffer> {
  let res: Response;
  try {
    res = await fetch(url, { signal: AbortSignal.timeout(300_000) });
  } catch (err) {
    const cause = (err as { cause?: { code?: string; message?: string } }).cause;
    throw new ExtensionFetchError(`GET ${url}: ${cause?.code ?? cause?.message ?? (err as Error).message}`, {
      cause: err,
    });
  }
  if (!res.ok) throw new ExtensionFetchError(`GET ${url}: HTTP ${res.status}`);
  return Buffer.from(await res.arrayBuffer());
}

/** Writes the wheel's extension file (gunzipped if an older repack shipped it gzipped) to `path`. */
async function unpack(wheel: Buffer, name: ExtensionName, path: string): Promise<void> {
  const inner = `duckdb_extension_${name}/extensions/v${DUCKDB_VERSION}/${name}.duckdb_extension`;
  const entries = readZip(wheel);
  const plain = entries.get(inner);
  const gz = entries.get(`${inner}.gz`);
  if (!plain && !gz) throw new ExtensionFetchError(`${inner} is not in the ${name} wheel`);
  const bytes = plain ? plain() : gunzipSync(gz!());
  await mkdir(dirname(path), { recursive: true });
  // Written aside and renamed: a crash never leaves a truncated file where DuckDB would LOAD it.
  await writeFile(`${path}.part`, bytes);
  await rename(`${path}.part`, path);
}

/**
 * The entries of a zip archive (APPNOTE.TXT §4.3): name → a function that inflates and
 * CRC-checks it. Stored and deflated entries; no ZIP64 (a wheel of these is a few MB).
 */
export function readZip(zip: Buffer): Map<string, () => Buffer> {
  const bad = (why: string): never => {
    throw new ExtensionFetchError(`not a usable zip archive: ${why}`);
  };
  let eocd = -1;
  for (let i = zip.length - 22; i >= Math.max(0, zip.length - 22 - 0xffff); i--) {
    if (zip.readUInt32LE(i) === 0x06054b50) {
      eocd = i;
      break;
    }
  }
  if (eocd < 0) bad('no end of central directory');
  const count = zip.readUInt16LE(eocd + 10);
  let at = zip.readUInt32LE(eocd + 16);
  const entries = new Map<string, () => Buffer>();
  for (let n = 0; n < count; n++) {
    if (at + 46 > zip.length || zip.readUInt32LE(at) !== 0x02014b50) bad('broken central directory');
    const method = zip.readUInt16LE(at + 10);
    const crc = zip.readUInt32LE(at + 16);
    const size = zip.readUInt32LE(at + 20);
    const nameLen = zip.readUInt16LE(at + 28);
    const local = zip.readUInt32LE(at + 42);
    const name = zip.toString('utf8', at + 46, at + 46 + nameLen);
    at += 46 + nameLen + zip.readUInt16LE(at + 30) + zip.readUInt16LE(at + 32);
    entries.set(name, () => {
      if (local + 30 > zip.length || zip.readUInt32LE(local) !== 0x04034b50)
        bad(`no local header for ${name}`);
      const start = local + 30 + zip.readUInt16LE(local + 26) + zip.readUInt16LE(local + 28);
      const body = zip.subarray(start, start + size);
      const data =
        method === 0 ? body : method === 8 ? inflateRawSync(body) : bad(`${name}: method ${method}`);
      if (crc32(data) !== crc) bad(`${name}: CRC mismatch`);
      return data;
    });
  }
  return entries;
}
