// Real database servers from Debian's packages (postgresql, mariadb-server, redis-server), each a
// private instance on a free 127.0.0.1 port with its data in a temp dir, started by the test and
// stopped by its Cleanup. The interop tests reach them through a userspace tailscaled, which
// forwards inbound tailnet TCP to its host's loopback.
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { chmod, chown, writeFile } from 'node:fs/promises';
import net from 'node:net';
import { join } from 'node:path';
import { freePort, tempDir } from '../control-peers.js';
import { type Cleanup, exec, spawnIn, waitFor } from './exec.js';

/** Where Debian puts PostgreSQL's server binaries (not on PATH): the newest installed major version. */
export function postgresBin(): string | undefined {
  const root = '/usr/lib/postgresql';
  if (!existsSync(root)) return undefined;
  const majors = readdirSync(root).filter((v) => existsSync(join(root, v, 'bin/postgres')));
  majors.sort((a, b) => Number(b) - Number(a));
  return majors[0] ? join(root, majors[0], 'bin') : undefined;
}

/** The servers' requirements, for skipUnless: missing ones name the Debian package. */
export function missingServers(): string[] {
  const missing: string[] = [];
  if (!postgresBin()) missing.push('PostgreSQL (Debian package postgresql)');
  for (const [bin, pkg] of [
    ['mariadbd', 'mariadb-server'],
    ['mariadb-install-db', 'mariadb-server'],
    ['redis-server', 'redis-server'],
    ['openssl', 'openssl'],
  ]) {
    try {
      execFileSync('sh', ['-c', `command -v ${bin}`], { stdio: 'ignore' });
    } catch {
      missing.push(`${bin} (Debian package ${pkg})`);
    }
  }
  return missing;
}

const idOf = (user: string, flag: '-u' | '-g') => Number(execFileSync('id', [flag, user]).toString());

/** A temp dir owned by a system user (the servers refuse to run as root). */
async function ownedDir(cleanup: Cleanup, prefix: string, user: string): Promise<string> {
  const dir = await tempDir(cleanup, prefix);
  await chown(dir, idOf(user, '-u'), idOf(user, '-g'));
  await chmod(dir, 0o700);
  return dir;
}

/** `cmd` run as `user` by setpriv, which execs it (no process in between for signals to miss). */
const asUser = (user: string, cmd: string, args: string[]): [string, string[]] => [
  'setpriv',
  [`--reuid=${user}`, `--regid=${user}`, '--init-groups', '--', cmd, ...args],
];

/** Resolves once something accepts TCP connections on 127.0.0.1:port. */
function listening(port: number): Promise<true | undefined> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(undefined));
  });
}

/** PostgreSQL with trust authentication on loopback: user `postgres`, database `postgres`. */
export async function startPostgres(cleanup: Cleanup): Promise<{ port: number }> {
  const bin = postgresBin()!;
  const dir = await ownedDir(cleanup, 'qs-pg-', 'postgres');
  const data = join(dir, 'data');
  await exec(...asUser('postgres', join(bin, 'initdb'), ['-D', data, '-U', 'postgres', '--auth=trust']), {
    timeoutMs: 60_000,
  });
  const port = await freePort();
  const proc = spawnIn(
    null,
    ...asUser('postgres', join(bin, 'postgres'), [
      ...['-D', data, '-p', String(port), '-k', dir],
      ...['-c', 'listen_addresses=127.0.0.1', '-c', 'fsync=off'],
    ]),
    { cleanup },
  );
  await waitFor(
    'postgres listening',
    async () => {
      if (!proc.isRunning()) throw new Error(`postgres exited:\n${proc.output()}`);
      return listening(port);
    },
    30_000,
    100,
  );
  return { port };
}

/** MariaDB on loopback with a user `quack` / `quackpass` that may do anything in database `quack`. */
export async function startMariadb(
  cleanup: Cleanup,
): Promise<{ port: number; user: string; password: string; database: string }> {
  const dir = await ownedDir(cleanup, 'qs-maria-', 'mysql');
  const data = join(dir, 'data');
  await exec(
    'mariadb-install-db',
    ['--no-defaults', `--datadir=${data}`, '--user=mysql', '--auth-root-authentication-method=socket'],
    {
      timeoutMs: 120_000,
    },
  );
  const init = join(dir, 'init.sql');
  // MariaDB matches 'user'@'localhost' before 'user'@'%', and tailscaled's connections come from loopback.
  const users = ["'quack'@'localhost'", "'quack'@'127.0.0.1'", "'quack'@'%'"];
  await writeFile(
    init,
    [
      'CREATE DATABASE IF NOT EXISTS quack;',
      ...users.flatMap((u) => [
        `CREATE USER IF NOT EXISTS ${u} IDENTIFIED BY 'quackpass';`,
        `GRANT ALL ON quack.* TO ${u};`,
      ]),
      '',
    ].join('\n'),
  );
  await chown(init, idOf('mysql', '-u'), idOf('mysql', '-g'));
  const port = await freePort();
  const proc = spawnIn(
    null,
    'mariadbd',
    [
      '--no-defaults',
      `--datadir=${data}`,
      `--socket=${join(dir, 'sock')}`,
      `--port=${port}`,
      '--bind-address=127.0.0.1',
      '--user=mysql',
      `--init-file=${init}`,
      `--pid-file=${join(dir, 'pid')}`,
      '--skip-log-bin',
      '--innodb-buffer-pool-size=32M',
      '--max-allowed-packet=64M',
    ],
    { cleanup },
  );
  await waitFor(
    'mariadb listening',
    async () => {
      if (!proc.isRunning()) throw new Error(`mariadbd exited:\n${proc.output()}`);
      return listening(port);
    },
    60_000,
    200,
  );
  return { port, user: 'quack', password: 'quackpass', database: 'quack' };
}

/** Redis on loopback, nothing saved to disk. */
export async function startRedis(cleanup: Cleanup): Promise<{ port: number }> {
  const dir = await ownedDir(cleanup, 'qs-redis-', 'redis');
  const port = await freePort();
  const proc = spawnIn(
    null,
    ...asUser('redis', 'redis-server', [
      ...['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
      ...['--dir', dir, '--protected-mode', 'no'],
    ]),
    { cleanup },
  );
  await waitFor(
    'redis listening',
    async () => {
      if (!proc.isRunning()) throw new Error(`redis-server exited:\n${proc.output()}`);
      return listening(port);
    },
    30_000,
    100,
  );
  return { port };
}
