/**
 * wg-quick(8) configuration files: the `[Interface]` and `[Peer]` sections of wg(8)'s
 * CONFIGURATION FILE FORMAT plus wg-quick's Address and MTU. Settings that only wg-quick's
 * shell script or the kernel act on (DNS, Table, the hooks, SaveConfig, FwMark) are accepted
 * with a warning. No message echoes text from the file: a typo can put a private key
 * anywhere, so errors name the file, the line and the setting, never what it held.
 */
import { readFile, stat } from 'node:fs/promises';
import { canonicalCidr, formatIp, parseCidr, parseIp } from './allowedips.js';
import { WireGuardError } from './errors.js';
import { keyFromBase64, keyToBase64 } from './keys.js';

/** The `[Interface]` section. */
export interface WgInterfaceConfig {
  privateKey: Uint8Array;
  listenPort?: number;
  /** The interface's own addresses (wg-quick Address), host bits kept: `10.0.0.2/24`. */
  addresses: Array<{ address: string; prefix: number; family: 4 | 6 }>;
  mtu?: number;
}

/** One `[Peer]` section. */
export interface WgPeerConfig {
  publicKey: Uint8Array;
  presharedKey?: Uint8Array;
  /** `host` is an IP literal (canonical, no brackets) or a hostname still to be resolved. */
  endpoint?: { host: string; port: number };
  /** Canonical prefixes, host bits zeroed: `10.0.0.0/24`, `fd00::/64`. */
  allowedIPs: string[];
  /** Seconds; absent when off (0 and `off` both mean off, wg(8)). */
  persistentKeepalive?: number;
}

/** A parsed file, with one warning per setting that was accepted but not applied. */
export interface WgConfig {
  interface: WgInterfaceConfig;
  peers: WgPeerConfig[];
  warnings: string[];
}

/** A configuration file problem, located by file and 1-based line (0: the file as a whole). */
export class ConfigError extends WireGuardError {
  constructor(
    readonly file: string,
    readonly line: number,
    detail: string,
  ) {
    super('BAD_CONFIG', `${line > 0 ? `${file}:${line}` : file}: ${detail}`);
  }
}

type Section = 'interface' | 'peer';
type Bad = (reason: string) => never;

interface InterfaceDraft {
  line: number;
  privateKey?: Uint8Array;
  listenPort?: number;
  addresses: WgInterfaceConfig['addresses'];
  mtu?: number;
}

interface PeerDraft extends Omit<WgPeerConfig, 'publicKey'> {
  line: number;
  publicKey?: Uint8Array;
  publicKeyLine: number;
}

interface Setting {
  name: string;
  section: Section;
  /** Address and AllowedIPs accumulate over repeated lines (wg-quick, wg(8)); others may appear once. */
  repeatable?: boolean;
  apply?: (value: string, iface: InterfaceDraft, peer: PeerDraft | undefined, bad: Bad) => void;
}

/** Settings read by wg-quick's script or by the kernel, which a userspace device has no use for. */
const IGNORED: Record<string, string> = {
  dns: 'DNS',
  table: 'Table',
  preup: 'PreUp',
  postup: 'PostUp',
  predown: 'PreDown',
  postdown: 'PostDown',
  saveconfig: 'SaveConfig',
  fwmark: 'FwMark',
};

const SETTINGS: Record<string, Setting> = {
  privatekey: {
    name: 'PrivateKey',
    section: 'interface',
    apply: (v, i, _p, bad) => {
      i.privateKey = key(v, bad);
    },
  },
  listenport: {
    name: 'ListenPort',
    section: 'interface',
    apply: (v, i, _p, bad) => {
      i.listenPort = int(v, 0, bad);
    },
  },
  mtu: {
    name: 'MTU',
    section: 'interface',
    apply: (v, i, _p, bad) => {
      // 68 is IPv4's minimum link MTU (RFC 791); wg-quick hands the value to ip-link(8).
      i.mtu = int(v, 68, bad);
    },
  },
  address: {
    name: 'Address',
    section: 'interface',
    repeatable: true,
    apply: (v, i, _p, bad) => {
      i.addresses.push(...list(v, bad).map((a) => address(a, bad)));
    },
  },
  publickey: {
    name: 'PublicKey',
    section: 'peer',
    apply: (v, _i, p, bad) => {
      p!.publicKey = key(v, bad);
    },
  },
  presharedkey: {
    name: 'PresharedKey',
    section: 'peer',
    apply: (v, _i, p, bad) => {
      p!.presharedKey = key(v, bad);
    },
  },
  endpoint: {
    name: 'Endpoint',
    section: 'peer',
    apply: (v, _i, p, bad) => {
      p!.endpoint = endpoint(v, bad);
    },
  },
  allowedips: {
    name: 'AllowedIPs',
    section: 'peer',
    repeatable: true,
    apply: (v, _i, p, bad) => {
      p!.allowedIPs.push(...list(v, bad).map((c) => cidr(c, bad)));
    },
  },
  persistentkeepalive: {
    name: 'PersistentKeepalive',
    section: 'peer',
    apply: (v, _i, p, bad) => {
      const seconds = v.toLowerCase() === 'off' ? 0 : int(v, 0, bad);
      p!.persistentKeepalive = seconds === 0 ? undefined : seconds;
    },
  },
};

/** Parse the text of a wg-quick configuration file. Throws {@link ConfigError}. */
export function parseConfig(text: string, fileName = '<config>'): WgConfig {
  const warnings: string[] = [];
  const peers: PeerDraft[] = [];
  let iface: InterfaceDraft | undefined;
  let section: Section | undefined;
  let seen = new Map<string, number>();
  const lines = text.replace(/^\uFEFF/, '').split(/\r?\n/);
  for (let n = 1; n <= lines.length; n++) {
    const fail: Bad = (detail) => {
      throw new ConfigError(fileName, n, detail);
    };
    // wg(8) and wg-quick both drop everything from the first '#'.
    const line = lines[n - 1]!.replace(/#.*/, '').trim();
    if (line === '') continue;
    if (line.startsWith('[')) {
      const header = /^\[\s*(interface|peer)\s*\]$/i.exec(line)?.[1]?.toLowerCase();
      if (header === undefined) fail('not an [Interface] or [Peer] section header');
      section = header as Section;
      seen = new Map();
      if (section === 'peer') peers.push({ line: n, allowedIPs: [], publicKeyLine: 0 });
      else if (iface !== undefined) fail(`a second [Interface] section (the first is on line ${iface.line})`);
      else iface = { line: n, addresses: [] };
      continue;
    }
    const eq = line.indexOf('=');
    if (eq < 0) fail("not a 'Key = Value' line");
    const rawKey = line.slice(0, eq).trim();
    const value = line.slice(eq + 1).trim();
    const lower = rawKey.toLowerCase();
    const setting = own(SETTINGS, lower);
    const ignored = own(IGNORED, lower);
    const name = setting?.name ?? ignored ?? safeName(rawKey);
    if (section === undefined) fail(`${name}: setting outside a section`);
    if (ignored !== undefined && section === 'interface') {
      const who = lower === 'fwmark' ? 'a wg(8) kernel' : 'a wg-quick';
      warnings.push(
        `${fileName}:${n}: ignored: ${name} is ${who} setting this userspace device does not apply`,
      );
      continue;
    }
    if (setting === undefined) fail(`${name}: unknown setting in [${sectionTitle(section)}]`);
    if (setting.section !== section) fail(`${name}: belongs in [${sectionTitle(setting.section)}]`);
    const first = seen.get(lower);
    if (first !== undefined && !setting.repeatable) fail(`${name}: given twice (first on line ${first})`);
    seen.set(lower, n);
    const peer = peers.at(-1);
    if (lower === 'publickey') peer!.publicKeyLine = n;
    setting.apply!(value, iface!, section === 'peer' ? peer : undefined, (reason) =>
      fail(`${name}: ${reason}`),
    );
    if (lower === 'allowedips') warnHostBits(value, `${fileName}:${n}`, warnings);
  }
  return finish(fileName, iface, peers, warnings);
}

function finish(
  file: string,
  iface: InterfaceDraft | undefined,
  peers: PeerDraft[],
  warnings: string[],
): WgConfig {
  if (iface === undefined) throw new ConfigError(file, 0, 'no [Interface] section');
  const { privateKey, listenPort, addresses, mtu } = iface;
  if (privateKey === undefined) throw new ConfigError(file, iface.line, '[Interface] has no PrivateKey');
  const firstLine = new Map<string, number>();
  const out = peers.map((p): WgPeerConfig => {
    const { publicKey, presharedKey, endpoint, allowedIPs, persistentKeepalive } = p;
    if (publicKey === undefined) throw new ConfigError(file, p.line, '[Peer] has no PublicKey');
    // Public keys are not secret, so their text is a fine map key.
    const id = keyToBase64(publicKey);
    const first = firstLine.get(id);
    if (first !== undefined) {
      throw new ConfigError(file, p.publicKeyLine, `PublicKey: the same key as the peer on line ${first}`);
    }
    firstLine.set(id, p.line);
    return { publicKey, presharedKey, endpoint, allowedIPs, persistentKeepalive };
  });
  return { interface: { privateKey, listenPort, addresses, mtu }, peers: out, warnings };
}

/**
 * Read and parse a configuration file; `path` names it in messages. Like wg-quick, warns when
 * the file is readable by others, since it holds the private key.
 */
export async function readConfig(path: string): Promise<WgConfig> {
  let text: string;
  let info: Awaited<ReturnType<typeof stat>>;
  try {
    [text, info] = await Promise.all([readFile(path, 'utf8'), stat(path)]);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'read error';
    throw new ConfigError(path, 0, `cannot read the file (${code})`);
  }
  const cfg = parseConfig(text, path);
  if (process.platform !== 'win32' && (info.mode & 0o007) !== 0) {
    cfg.warnings.push(`${path}: is world accessible (wg-quick would warn too; try chmod 600)`);
  }
  return cfg;
}

/** Write a configuration back as wg-quick text; `parseConfig(formatConfig(c))` yields `c`. */
export function formatConfig(cfg: Pick<WgConfig, 'interface' | 'peers'>): string {
  const { interface: i } = cfg;
  const out = ['[Interface]', `PrivateKey = ${keyToBase64(i.privateKey)}`];
  if (i.listenPort !== undefined) out.push(`ListenPort = ${i.listenPort}`);
  if (i.addresses.length > 0)
    out.push(`Address = ${i.addresses.map((a) => `${a.address}/${a.prefix}`).join(', ')}`);
  if (i.mtu !== undefined) out.push(`MTU = ${i.mtu}`);
  for (const p of cfg.peers) {
    out.push('', '[Peer]', `PublicKey = ${keyToBase64(p.publicKey)}`);
    if (p.presharedKey !== undefined) out.push(`PresharedKey = ${keyToBase64(p.presharedKey)}`);
    if (p.endpoint !== undefined) {
      const { host, port } = p.endpoint;
      out.push(`Endpoint = ${host.includes(':') ? `[${host}]` : host}:${port}`);
    }
    if (p.allowedIPs.length > 0) out.push(`AllowedIPs = ${p.allowedIPs.join(', ')}`);
    if (p.persistentKeepalive !== undefined) out.push(`PersistentKeepalive = ${p.persistentKeepalive}`);
  }
  return `${out.join('\n')}\n`;
}

/** A record lookup that a name like `constructor` or `__proto__` cannot steer into the prototype. */
function own<V>(record: Record<string, V>, name: string): V | undefined {
  return Object.hasOwn(record, name) ? record[name] : undefined;
}

function sectionTitle(s: Section): string {
  return s === 'interface' ? 'Interface' : 'Peer';
}

/**
 * A user-typed name, echoed only if it looks like a setting name. A stray key line such as
 * `<base64>=` would otherwise put 43 characters of a key into the message.
 */
function safeName(text: string): string {
  return /^[A-Za-z][A-Za-z0-9]{0,23}$/.test(text) ? text : 'an unrecognised name';
}

function key(value: string, bad: Bad): Uint8Array {
  // keyFromBase64 decodes without branching on the key, and its error names no value either.
  try {
    return keyFromBase64(value);
  } catch (e) {
    if (e instanceof WireGuardError) bad('not a valid base64 32-byte key');
    throw e;
  }
}

function int(value: string, min: number, bad: Bad, max = 65535): number {
  if (!/^[0-9]{1,5}$/.test(value)) bad(`not a whole number in ${min}-${max}`);
  const n = Number(value);
  if (n < min || n > max) bad(`not a whole number in ${min}-${max}`);
  return n;
}

/** A comma-separated list; an empty value is an empty list, an empty item is an error (wg(8)). */
function list(value: string, bad: Bad): string[] {
  if (value === '') return [];
  const items = value.split(',').map((s) => s.trim());
  if (items.some((s) => s === '')) bad('empty item in a comma-separated list');
  return items;
}

function cidr(text: string, bad: Bad): string {
  try {
    return canonicalCidr(text);
  } catch (e) {
    if (e instanceof WireGuardError) bad(`${e.message} in a list item`);
    throw e;
  }
}

function address(text: string, bad: Bad): WgInterfaceConfig['addresses'][number] {
  try {
    const { addr, bits } = parseCidr(text);
    return { address: formatIp(addr), prefix: bits, family: addr.length === 4 ? 4 : 6 };
  } catch (e) {
    if (e instanceof WireGuardError) bad(`${e.message} in a list item`);
    throw e;
  }
}

/** wg(8): `host:port`, with IPv6 literals in brackets; hostnames are resolved later. */
function endpoint(value: string, bad: Bad): { host: string; port: number } {
  const m = /^(?:\[([^\]]*)\]|([^:[\]]+)):([0-9]{1,5})$/.exec(value);
  if (m === null) bad('not host:port or [IPv6]:port');
  const port = Number(m[3]);
  if (port < 1 || port > 65535) bad('port not in 1-65535');
  if (m[1] !== undefined) {
    const ip = parseIp(m[1]);
    if (ip === undefined || ip.length !== 16) bad('not an IPv6 address in brackets');
    return { host: formatIp(ip), port };
  }
  const host = m[2]!;
  if (/^[0-9.]+$/.test(host)) {
    const ip = parseIp(host);
    if (ip === undefined) bad('not a valid IPv4 address');
    return { host: formatIp(ip), port };
  }
  const label = '[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?';
  if (host.length > 253 || !new RegExp(`^${label}(?:\\.${label})*\\.?$`).test(host))
    bad('not a valid hostname');
  return { host, port };
}

/** wg(8) warns when an allowed IP has host bits set (`validate_netmask`); so do we. */
function warnHostBits(value: string, where: string, warnings: string[]): void {
  for (const item of value === '' ? [] : value.split(',')) {
    const { addr, bits } = parseCidr(item.trim());
    const canonical = canonicalCidr({ addr, bits });
    if (canonical !== `${formatIp(addr)}/${bits}`) {
      // Safe to show: it parsed as a prefix, so it is no key.
      warnings.push(`${where}: AllowedIPs: a prefix has non-zero host bits; using ${canonical}`);
    }
  }
}
