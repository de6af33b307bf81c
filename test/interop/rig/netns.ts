// Network namespaces, veth pairs, impairments and the sweep of leftovers for interop tests.
//
// Every namespace, link, UAPI socket and nftables table the rig makes is named `qsr<tag><role>`: `tag` is four
// random characters per test run, registered in RUN_DIR with the pid of the process that owns the run. That is
// what lets a sweep remove what crashed runs left behind without touching a run that is still going.
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { type Cleanup, type ExecResult, errorText, exec, execIn, findExecutable, sleep } from './exec.js';

export { Cleanup, type ExecOptions, type ExecResult, exec, execIn, type Spawned, spawnIn } from './exec.js';

export const RIG_PREFIX = 'qsr';
const TAG_LENGTH = 4;
const RUN_DIR = '/run/quackscale-rig';
export const WG_RUN_DIR = '/var/run/wireguard';
const MAX_IFNAME = 15;

/** A fresh run tag, registered to this process until `cleanup` runs. */
export async function newRunTag(cleanup: Cleanup): Promise<string> {
  const alphabet = 'abcdefghijklmnopqrstuvwxyz0123456789';
  const tag = [...randomBytes(TAG_LENGTH)].map((b) => alphabet[b % alphabet.length]).join('');
  await mkdir(RUN_DIR, { recursive: true });
  await writeFile(`${RUN_DIR}/${tag}`, `${process.pid}\n`);
  cleanup.add(`release run tag ${tag}`, () => rm(`${RUN_DIR}/${tag}`, { force: true }));
  return tag;
}

/** `qsr<tag><role>`; throws when it would not fit an interface name. */
export function rigName(tag: string, role: string): string {
  const name = `${RIG_PREFIX}${tag}${role}`;
  if (name.length > MAX_IFNAME) throw new Error(`rig name ${name} is longer than ${MAX_IFNAME} characters`);
  return name;
}

export async function netnsList(): Promise<string[]> {
  const { stdout } = await exec('ip', ['netns', 'list']);
  return stdout
    .split('\n')
    .map((line) => line.trim().split(/\s+/)[0] ?? '')
    .filter((name) => name !== '');
}

/** Creates a namespace with lo up; `cleanup` deletes it and ends whatever still runs inside. */
export async function createNetns(name: string, cleanup: Cleanup): Promise<string> {
  await exec('ip', ['netns', 'add', name]);
  cleanup.add(`delete netns ${name}`, () => deleteNetns(name));
  await exec('ip', ['-n', name, 'link', 'set', 'lo', 'up']);
  return name;
}

export async function deleteNetns(name: string): Promise<void> {
  if (!(await netnsList()).includes(name)) return;
  // A namespace lives on while processes run inside it; they are this rig's own, started in it.
  const { stdout } = await exec('ip', ['netns', 'pids', name]);
  await terminate(stdout.split(/\s+/).filter(Boolean).map(Number));
  await exec('ip', ['netns', 'del', name]);
}

/** SIGTERM, then SIGKILL for whatever is left after graceMs. */
async function terminate(pids: number[], graceMs = 1500): Promise<void> {
  const live = pids.filter((pid) => signal(pid, 'SIGTERM'));
  const deadline = Date.now() + graceMs;
  while (live.some(running) && Date.now() < deadline) await sleep(20);
  for (const pid of live) if (running(pid)) signal(pid, 'SIGKILL');
}

/** Exists and is not a zombie: orphans of a crashed run wait as zombies until init reaps them. */
function running(pid: number): boolean {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT' || (err as NodeJS.ErrnoException).code === 'ESRCH') {
      return false;
    }
    throw err;
  }
  // pid (comm) state …: comm may hold spaces and parentheses, so read after the last ')'.
  return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
}

/** Sends a signal; false when the process no longer exists. */
function signal(pid: number, sig: NodeJS.Signals | 0): boolean {
  try {
    process.kill(pid, sig);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ESRCH') return false;
    throw err;
  }
}

export interface VethEnd {
  /** null: the current (root) namespace. */
  ns: string | null;
  name: string;
  /** Address with prefix length, e.g. 10.98.1.1/30. */
  cidr?: string;
}

/** A veth pair with each end in its namespace, addressed and up. */
export async function createVeth(a: VethEnd, b: VethEnd, cleanup: Cleanup): Promise<void> {
  const where = (end: VethEnd): string[] => (end.ns === null ? [] : ['netns', end.ns]);
  await exec('ip', ['link', 'add', a.name, ...where(a), 'type', 'veth', 'peer', 'name', b.name, ...where(b)]);
  // Deleting one end removes both; a namespace deleted first has taken it along already.
  cleanup.add(`delete veth ${a.name}`, async () => {
    if (await linkExists(a.ns, a.name)) await ipIn(a.ns, ['link', 'del', a.name]);
  });
  for (const end of [a, b]) {
    if (end.cidr !== undefined) await ipIn(end.ns, ['addr', 'add', end.cidr, 'dev', end.name]);
    await ipIn(end.ns, ['link', 'set', end.name, 'up']);
  }
}

/** `ip [-n ns] args…` */
export function ipIn(ns: string | null, args: readonly string[]): Promise<ExecResult> {
  return exec('ip', ns === null ? args : ['-n', ns, ...args]);
}

export async function linkExists(ns: string | null, name: string): Promise<boolean> {
  if (ns !== null && !(await netnsList()).includes(ns)) return false;
  const res = await exec('ip', [...(ns === null ? [] : ['-n', ns]), 'link', 'show', 'dev', name], {
    check: false,
  });
  return res.code === 0;
}

export interface Subnet30 {
  /** Host addresses of both ends, e.g. 10.98.37.5 and 10.98.37.6. */
  a: string;
  b: string;
  /** The same with /30, for `ip addr add`. */
  cidrA: string;
  cidrB: string;
}

/**
 * A random 10.98.x.y/30 that overlaps no IPv4 address or route of the current namespace. Only veths with an
 * end in the root namespace need one: inside a test's own namespaces any address is private to it.
 */
export async function allocateSubnet30(): Promise<Subnet30> {
  const { stdout } = await exec('ip', ['-4', '-o', 'addr', 'show']);
  const routes = await exec('ip', ['-4', 'route', 'show', 'table', 'all']);
  const taken: Array<[number, number]> = [];
  for (const m of stdout.matchAll(/inet (\d+\.\d+\.\d+\.\d+)\/(\d+)/g))
    taken.push(range(m[1]!, Number(m[2])));
  for (const m of routes.stdout.matchAll(/^(?:\w+ )?(\d+\.\d+\.\d+\.\d+)(?:\/(\d+))?/gm)) {
    taken.push(range(m[1]!, Number(m[2] ?? 32)));
  }
  for (let attempt = 0; attempt < 200; attempt++) {
    // Third octet 0 is left to hand-written examples (research notes use 10.98.0.0/24).
    const x = 1 + Math.floor(Math.random() * 254);
    const y = 4 * Math.floor(Math.random() * 64);
    const [lo, hi] = range(`10.98.${x}.${y}`, 30);
    if (taken.some(([tlo, thi]) => lo <= thi && tlo <= hi)) continue;
    const a = `10.98.${x}.${y + 1}`;
    const b = `10.98.${x}.${y + 2}`;
    return { a, b, cidrA: `${a}/30`, cidrB: `${b}/30` };
  }
  throw new Error('no free /30 in 10.98.0.0/16');
}

function range(addr: string, prefix: number): [number, number] {
  const n = addr.split('.').reduce((acc, octet) => acc * 256 + Number(octet), 0);
  const size = 2 ** (32 - prefix);
  const lo = n - (n % size);
  return [lo, lo + size - 1];
}

export interface NetemOptions {
  lossPercent?: number;
  delayMs?: number;
  jitterMs?: number;
  /** Needs delayMs: netem reorders by sending some packets without the delay. */
  reorderPercent?: number;
  reorderCorrelationPercent?: number;
  rateMbit?: number;
}

/**
 * `tc qdisc replace dev X root netem …` on the egress of `dev`. Needs sch_netem in the kernel: check the
 * 'netem' requirement first (the Firecracker kernel of this workplace has none; see addIngressLoss).
 */
export async function setNetem(ns: string | null, dev: string, opts: NetemOptions): Promise<void> {
  const args: string[] = [];
  if (opts.delayMs !== undefined) {
    args.push('delay', `${opts.delayMs}ms`);
    if (opts.jitterMs !== undefined) args.push(`${opts.jitterMs}ms`);
  }
  if (opts.lossPercent !== undefined) args.push('loss', `${opts.lossPercent}%`);
  if (opts.reorderPercent !== undefined) {
    if (!opts.delayMs) throw new Error('netem reorder needs a delay');
    args.push('reorder', `${opts.reorderPercent}%`, `${opts.reorderCorrelationPercent ?? 0}%`);
  }
  if (opts.rateMbit !== undefined) args.push('rate', `${opts.rateMbit}mbit`);
  await execIn(ns, 'tc', ['qdisc', 'replace', 'dev', dev, 'root', 'netem', ...args]);
}

export async function clearNetem(ns: string | null, dev: string): Promise<void> {
  await execIn(ns, 'tc', ['qdisc', 'del', 'dev', dev, 'root']);
}

function lossTable(dev: string): string {
  return `${dev.replace(/[^A-Za-z0-9_]/g, '_')}_loss`;
}

/**
 * Drops `percent` of the IPv4/IPv6 packets arriving on `dev`, with nftables (netdev ingress, `numgen random`).
 * This works without sch_netem; ARP and neighbour discovery are spared so the link stays usable.
 */
export async function addIngressLoss(
  ns: string | null,
  dev: string,
  percent: number,
  cleanup: Cleanup,
): Promise<void> {
  if (!(percent >= 0 && percent <= 100)) throw new Error(`loss percent out of range: ${percent}`);
  const table = lossTable(dev);
  const threshold = Math.round(percent * 100);
  const ruleset = [
    `table netdev ${table} {`,
    `  chain ingress {`,
    `    type filter hook ingress device "${dev}" priority 0;`,
    `    meta protocol { ip, ip6 } numgen random mod 10000 < ${threshold} drop`,
    '  }',
    '}',
    '',
  ].join('\n');
  await execIn(ns, 'nft', ['-f', '-'], { input: ruleset });
  cleanup.add(`remove loss on ${dev}`, () => removeIngressLoss(ns, dev));
}

export async function removeIngressLoss(ns: string | null, dev: string): Promise<void> {
  if (ns !== null && !(await netnsList()).includes(ns)) return;
  const table = lossTable(dev);
  const { stdout } = await execIn(ns, 'nft', ['list', 'tables', 'netdev']);
  if (stdout.split('\n').some((line) => line.trim() === `table netdev ${table}`)) {
    await execIn(ns, 'nft', ['delete', 'table', 'netdev', table]);
  }
}

async function readdirIfExists(dir: string): Promise<string[]> {
  try {
    return await readdir(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
}

async function ownerAlive(tag: string): Promise<boolean> {
  let text: string;
  try {
    text = await readFile(`${RUN_DIR}/${tag}`, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw err;
  }
  const pid = Number(text.trim());
  return Number.isInteger(pid) && pid > 0 && running(pid);
}

function tagOf(name: string): string | undefined {
  if (!name.startsWith(RIG_PREFIX) || name.length < RIG_PREFIX.length + TAG_LENGTH) return undefined;
  return name.slice(RIG_PREFIX.length, RIG_PREFIX.length + TAG_LENGTH);
}

/** Pids of wireguard-go processes (any namespace) whose interface name is among `ifnames`. */
async function wireguardGoPids(ifnames: Set<string>): Promise<number[]> {
  const pids: number[] = [];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    let argv: string[];
    try {
      argv = (await readFile(`/proc/${entry}/cmdline`, 'utf8')).split('\0');
    } catch (err) {
      // Processes come and go while /proc is read.
      if ((err as NodeJS.ErrnoException).code === 'ENOENT' || (err as NodeJS.ErrnoException).code === 'ESRCH')
        continue;
      throw err;
    }
    if (argv[0]?.endsWith('wireguard-go') && argv.some((arg) => ifnames.has(arg))) pids.push(Number(entry));
  }
  return pids;
}

/**
 * Best-effort removal of what earlier runs left behind: namespaces (and the processes inside), root-namespace
 * links, wireguard-go processes and their UAPI sockets, run-tag files. With `tag`, everything of that run goes
 * (a backstop after a test's own cleanup); without, only what belongs to runs whose owner process is gone.
 * Returns the names removed; failures are logged once and do not throw.
 */
export async function sweepLeftovers(opts: { tag?: string } = {}): Promise<string[]> {
  const removed: string[] = [];
  const errors: string[] = [];
  const staleCache = new Map<string, boolean>();
  const isTarget = async (name: string): Promise<boolean> => {
    const tag = tagOf(name);
    if (tag === undefined) return false;
    if (opts.tag !== undefined) return tag === opts.tag;
    if (!staleCache.has(tag)) staleCache.set(tag, !(await ownerAlive(tag)));
    return staleCache.get(tag)!;
  };
  const attempt = async (what: string, fn: () => Promise<unknown>): Promise<void> => {
    try {
      await fn();
      removed.push(what);
    } catch (err) {
      errors.push(`${what}: ${errorText(err)}`);
    }
  };

  const sockets = (await readdirIfExists(WG_RUN_DIR)).filter((f) => f.endsWith('.sock'));
  const ifnames = new Set<string>();
  for (const sock of sockets) {
    const ifname = sock.slice(0, -'.sock'.length);
    if (await isTarget(ifname)) ifnames.add(ifname);
  }
  if (ifnames.size > 0) {
    await attempt(`wireguard-go of ${[...ifnames].join(', ')}`, async () =>
      terminate(await wireguardGoPids(ifnames)),
    );
  }
  for (const ns of await netnsList()) {
    if (await isTarget(ns)) await attempt(`netns ${ns}`, () => deleteNetns(ns));
  }
  const { stdout } = await exec('ip', ['-o', 'link', 'show']);
  for (const m of stdout.matchAll(/^\d+: ([^:@\s]+)/gm)) {
    const link = m[1]!;
    if (await isTarget(link)) await attempt(`link ${link}`, () => exec('ip', ['link', 'del', link]));
  }
  // Loss tables inside a namespace went with it; only the root namespace can hold stale ones.
  if (findExecutable('nft') !== undefined) {
    for (const table of (await exec('nft', ['list', 'tables', 'netdev'])).stdout.split('\n')) {
      const name = table.trim().split(' ')[2];
      if (name !== undefined && (await isTarget(name))) {
        await attempt(`nft table ${name}`, () => exec('nft', ['delete', 'table', 'netdev', name]));
      }
    }
  }
  for (const ifname of ifnames) {
    await attempt(`socket ${ifname}.sock`, () => rm(`${WG_RUN_DIR}/${ifname}.sock`, { force: true }));
  }
  for (const tag of await readdirIfExists(RUN_DIR)) {
    if (await isTarget(`${RIG_PREFIX}${tag}`))
      await attempt(`run tag ${tag}`, () => rm(`${RUN_DIR}/${tag}`, { force: true }));
  }
  if (errors.length > 0) console.warn(`[interop rig] sweep could not remove:\n  ${errors.join('\n  ')}`);
  return removed;
}
