// The real derper for interop tests: loopback only, unique ports, a key file in a temp dir, plain HTTP or TLS
// with derper's own self-signed IP certificate (-certmode manual), stopped by the caller's Cleanup.

import { createSocket } from 'node:dgram';
import { accessSync, constants, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, connect as netConnect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Cleanup, type Spawned, spawnIn, waitFor } from './rig/exec.js';

export const PEERS_BIN = process.env.PEERS_BIN ?? '/opt/tsbin';
export const DERPER = join(PEERS_BIN, 'derper');
export const DERPPROBE = join(PEERS_BIN, 'derpprobe');

/** The peer binaries among `paths` that are missing or not executable (for skipUnless). */
export function missingBinaries(paths: readonly string[]): string[] {
  return paths.filter((p) => {
    try {
      accessSync(p, constants.X_OK);
      return false;
    } catch {
      return true;
    }
  });
}

/** A TCP port that was free a moment ago (and whose UDP twin is free too). */
export async function freePort(): Promise<number> {
  for (;;) {
    const port = await new Promise<number>((resolve, reject) => {
      const s = createServer();
      s.once('error', reject);
      s.listen(0, '127.0.0.1', () => {
        const p = (s.address() as { port: number }).port;
        s.close(() => resolve(p));
      });
    });
    const udpFree = await new Promise<boolean>((resolve) => {
      const u = createSocket('udp4');
      u.once('error', () => resolve(false));
      u.bind(port, '127.0.0.1', () => u.close(() => resolve(true)));
    });
    if (udpFree) return port;
  }
}

function tcpOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = netConnect({ host: '127.0.0.1', port });
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

export interface Derper {
  url: string;
  port: number;
  stunPort: number;
  /** `sha256-raw:<hex>` of derper's self-signed certificate (TLS mode). */
  certName?: string;
  proc: Spawned;
  /** Kills derper and starts it again on the same ports and key. */
  restart(): Promise<void>;
  stop(): Promise<void>;
}

/** Starts derper on 127.0.0.1 and waits until it accepts connections. */
export async function startDerper(
  cleanup: Cleanup,
  opts: { tls?: boolean; meshKey?: string } = {},
): Promise<Derper> {
  const dir = mkdtempSync(join(tmpdir(), 'qs-derper-'));
  cleanup.add(`rm ${dir}`, () => rmSync(dir, { recursive: true, force: true }));
  const port = await freePort();
  const stunPort = await freePort();
  const args = ['-a', `127.0.0.1:${port}`, '-stun-port', String(stunPort), '-c', join(dir, 'derper.key')];
  if (opts.meshKey) {
    writeFileSync(join(dir, 'mesh.key'), opts.meshKey, { mode: 0o600 });
    args.push('-mesh-psk-file', join(dir, 'mesh.key'));
  }
  if (opts.tls)
    args.push(
      '-certmode',
      'manual',
      '-hostname',
      '127.0.0.1',
      '-certdir',
      join(dir, 'certs'),
      '-http-port',
      '-1',
    );
  const d: Derper = {
    url: `${opts.tls ? 'https' : 'http'}://127.0.0.1:${port}/derp`,
    port,
    stunPort,
    proc: undefined as unknown as Spawned,
    restart: async () => {
      await d.proc.stop();
      await launch();
    },
    stop: () => d.proc.stop(),
  };
  const launch = async (): Promise<void> => {
    d.proc = spawnIn(null, DERPER, args);
    await waitFor(`derper on ${port}`, async () => ((await tcpOpen(port)) ? true : undefined), 15_000, 50);
    if (opts.tls) {
      d.certName = await waitFor(
        'derper CertName',
        () => /"CertName":"(sha256-raw:[0-9a-f]+)"/.exec(d.proc.output())?.[1],
        5000,
      );
    }
  };
  await launch();
  cleanup.add(`stop derper ${port}`, () => d.proc.stop());
  return d;
}
