/**
 * The servers `npm run bench -- abuse` attacks, each alone in its own process so that its RSS
 * and CPU are its own, all with their defaults: our DERP relay (`quackscale derp serve`) beside
 * derper, and our control server (`quackscale control serve`) beside Headscale. Both our
 * servers run from this build (dist-bench), as a user would start them.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Headscale, tempDir } from '../test/interop/control-peers.js';
import { freePort, PEERS_BIN, startDerper } from '../test/interop/derp-rig.js';
import { type Cleanup, exec, spawnIn, waitFor } from '../test/interop/rig/exec.js';

/** What a target serves. */
export type Kind = 'derp' | 'control';

/** One running server. */
export interface Target {
  kind: Kind;
  /** `derper`, `ours (derp serve)`, `Headscale`, `ours (control serve)`. */
  name: string;
  ours: boolean;
  port: number;
  /** The DERP URL, or the control server's base URL. */
  url: string;
  pid: number;
  /** A reusable auth key (control servers). */
  authKey: string;
  isRunning(): boolean;
}

/** Resident memory (bytes) and CPU time used so far (s) of a process, from /proc. */
export interface Usage {
  rss: number;
  cpu: number;
}

const TICKS = 100; // USER_HZ: /proc/<pid>/stat counts CPU time in 1/100 s on Linux

/** The process's RSS and CPU seconds now. */
export function usage(pid: number): Usage {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const rss = Number(/VmRSS:\s+(\d+) kB/.exec(status)?.[1] ?? 0) * 1024;
  // Fields after the command (which may hold spaces) start at ") "; utime and stime are the 12th and 13th.
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return { rss, cpu: (Number(f[11]) + Number(f[12])) / TICKS };
}

/** Which of the peers in /opt/tsbin (or $PEERS_BIN) the bench needs are missing. */
export function missingPeers(): string[] {
  return ['derper', 'headscale'].filter((b) => !existsSync(join(PEERS_BIN, b)));
}

const here = dirname(fileURLToPath(import.meta.url));
/** Our CLI as this bench built it (dist-bench/src/cli/main.js). */
const MAIN = join(here, '..', 'src', 'cli', 'main.js');

async function listening(url: string, proc: { isRunning(): boolean; output(): string }): Promise<void> {
  await waitFor(
    `${url} answering`,
    async () => {
      if (!proc.isRunning()) throw new Error(`exited:\n${proc.output()}`);
      return (await fetch(url).then(
        (r) => r.status < 500,
        () => false,
      ))
        ? true
        : undefined;
    },
    30_000,
    100,
  );
}

/** derper and our relay, both plain HTTP on loopback (derper's -a 127.0.0.1:PORT, our --addr). */
export async function startDerpTargets(cleanup: Cleanup): Promise<[Target, Target]> {
  const d = await startDerper(cleanup);
  const derper: Target = {
    kind: 'derp',
    name: 'derper',
    ours: false,
    port: d.port,
    url: d.url,
    pid: d.proc.pid,
    authKey: '',
    isRunning: () => d.proc.isRunning(),
  };
  const port = await freePort();
  const proc = spawnIn(null, process.execPath, [MAIN, 'derp', 'serve', '--addr', `127.0.0.1:${port}`], {
    cleanup,
  });
  await listening(`http://127.0.0.1:${port}/derp/probe`, proc);
  const ours: Target = {
    kind: 'derp',
    name: 'ours (derp serve)',
    ours: true,
    port,
    url: `http://127.0.0.1:${port}/derp`,
    pid: proc.pid,
    authKey: '',
    isRunning: () => proc.isRunning(),
  };
  return [derper, ours];
}

/** Headscale (sqlite, no policy) and our control server, each with a reusable auth key. */
export async function startControlTargets(cleanup: Cleanup): Promise<[Target, Target]> {
  const hs = await Headscale.start(cleanup);
  const headscale: Target = {
    kind: 'control',
    name: 'Headscale',
    ours: false,
    port: hs.port,
    url: hs.url,
    pid: hs.proc!.pid,
    authKey: await hs.createKey(await hs.createUser('bench'), { reusable: true }),
    isRunning: () => hs.proc?.isRunning() ?? false,
  };
  const dir = await tempDir(cleanup, 'qs-bench-abuse-ctl-');
  const port = await freePort();
  const proc = spawnIn(
    null,
    process.execPath,
    [MAIN, 'control', 'serve', '--addr', `127.0.0.1:${port}`, '--state-dir', dir],
    { cleanup },
  );
  const url = `http://127.0.0.1:${port}`;
  await listening(`${url}/health`, proc);
  const key = await exec(process.execPath, [MAIN, 'control', 'authkey', '--state-dir', dir, '--reusable'], {
    timeoutMs: 20_000,
  });
  const ours: Target = {
    kind: 'control',
    name: 'ours (control serve)',
    ours: true,
    port,
    url,
    pid: proc.pid,
    authKey: key.stdout.trim(),
    isRunning: () => proc.isRunning(),
  };
  return [headscale, ours];
}
