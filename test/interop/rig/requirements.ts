// What an interop test needs from the machine, and how a test that lacks it behaves: skipped with a
// warning on a developer's machine, failed under CI=true, where a skip would hide a broken setup.
import { spawnSync } from 'node:child_process';
import { statSync } from 'node:fs';
import { describe, it } from 'vitest';
import { findExecutable } from './exec.js';

/**
 * Special requirements; any other name is an executable looked up in PATH.
 * - root: uid 0 (namespaces, TUN, tc).
 * - netns: network namespaces can actually be made here (root in a container may not have the capability).
 * - tun: /dev/net/tun is a character device.
 * - netem: the kernel has sch_netem (delay, reorder); loss alone also works through nftables ('nft').
 */
const probes: Record<string, () => boolean> = {
  root: () => process.getuid?.() === 0,
  netns: () => succeeds('unshare', ['--net', 'true']),
  tun: () => statSync('/dev/net/tun', { throwIfNoEntry: false })?.isCharacterDevice() ?? false,
  netem: () =>
    succeeds('unshare', [
      '--net',
      'sh',
      '-c',
      'ip link add qsrprobe0 type veth peer name qsrprobe1 && tc qdisc add dev qsrprobe0 root netem delay 1ms',
    ]),
};

const cache = new Map<string, boolean>();

function succeeds(cmd: string, args: string[]): boolean {
  if (findExecutable(cmd) === undefined) return false;
  const res = spawnSync(cmd, args, { stdio: 'ignore', timeout: 10_000 });
  return res.status === 0;
}

/** The requirements among `names` that this machine does not meet (empty when all are met). */
export function checkRequirements(names: readonly string[]): string[] {
  return names.filter((name) => {
    let ok = cache.get(name);
    if (ok === undefined) {
      const probe = probes[name];
      ok = probe ? probe() : findExecutable(name) !== undefined;
      cache.set(name, ok);
    }
    return !ok;
  });
}

export function underCI(): boolean {
  return process.env.CI === 'true';
}

export type SuiteFn = (name: string, body: () => void) => void;

/**
 * A `describe` for a suite that needs `missing` to be empty:
 *
 *   skipUnless(checkRequirements(['root', 'wireguard-go']))('wireguard-go pair', () => { … });
 *
 * With nothing missing it is plain `describe`. Otherwise, under CI=true the suite is replaced by one test that
 * fails naming what is missing; elsewhere the suite is skipped, its name and a warning saying why.
 */
export function skipUnless(missing: readonly string[]): SuiteFn {
  if (missing.length === 0) return (name, body) => describe(name, body);
  const list = missing.join(', ');
  if (underCI()) {
    return (name) =>
      describe(name, () => {
        it('has its interop requirements', () => {
          throw new Error(`interop requirement missing under CI: ${list}`);
        });
      });
  }
  return (name, body) => {
    console.warn(`[interop] skipping "${name}": missing ${list} (under CI=true this fails)`);
    describe.skip(`${name} [skipped: missing ${list}]`, body);
  };
}
