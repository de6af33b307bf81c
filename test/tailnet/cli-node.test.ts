// `quackscale control serve --derp`, `up` (and --metrics-listen), `status` (and --json), `ping` (and --tsmp),
// `netcheck`, `down` as a user runs them (the built CLI).
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, statSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, expect, it } from 'vitest';

const CLI = resolve(__dirname, '../../dist/cli/main.js');
const run = (args: string[]) => promisify(execFile)(process.execPath, [CLI, ...args], { timeout: 20_000 });
const children: ChildProcess[] = [];
afterAll(() => {
  for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
});

async function freePort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const p = (s.address() as net.AddressInfo).port;
  await new Promise((r) => s.close(r));
  return p;
}

/** Starts a long-running CLI command; resolves once `ready` appears on its stdout. */
function start(args: string[], ready: RegExp): Promise<ChildProcess> {
  const c = spawn(process.execPath, [CLI, ...args]);
  children.push(c);
  return new Promise((res, rej) => {
    let out = '';
    c.stdout!.on('data', (d) => {
      out += d;
      if (ready.test(out)) res(c);
    });
    c.on('exit', (code) => rej(new Error(`exited ${code} before ready: ${out}`)));
  });
}

it.skipIf(!existsSync(CLI) && process.env.CI !== 'true')(
  'up, status, ping, forward/serve and down',
  async () => {
    const dir = mkdtempSync(join(tmpdir(), 'qs-cli-node-'));
    const ctlPort = await freePort();
    await start(
      ['control', 'serve', '--addr', `127.0.0.1:${ctlPort}`, '--state-dir', join(dir, 'ctl'), '--derp'],
      /listening/,
    );
    const key = (
      await run(['control', 'authkey', '--state-dir', join(dir, 'ctl'), '--reusable'])
    ).stdout.trim();
    const web = http.createServer((_req, res) => res.end('served by alpha'));
    await new Promise<void>((r) => web.listen(0, '127.0.0.1', r));
    const webPort = (web.address() as net.AddressInfo).port;
    const node = async (name: string, extra: string[]) => {
      const udp = await freePort();
      const args = [
        'up',
        '--control-url',
        `http://127.0.0.1:${ctlPort}`,
        '--authkey',
        key,
        '--state-dir',
        join(dir, name),
      ];
      return start(
        [...args, '--hostname', name, '--port', String(udp), '--endpoint', `127.0.0.1:${udp}`, ...extra],
        /100\.64\./,
      );
    };
    const fwd = await freePort();
    const metricsPort = await freePort();
    // A metrics port that is taken fails `up` at once, naming it (exit 1), before joining.
    const taken = net.createServer();
    await new Promise<void>((r) => taken.listen(0, '127.0.0.1', r));
    const takenPort = (taken.address() as net.AddressInfo).port;
    await expect(
      run([
        'up',
        '--state-dir',
        join(dir, 'x'),
        '--control-url',
        `http://127.0.0.1:${ctlPort}`,
        '--metrics-listen',
        String(takenPort),
      ]),
    ).rejects.toMatchObject({
      code: 1,
      stderr: expect.stringContaining(`127.0.0.1:${takenPort} is already in use`),
    });
    taken.close();
    const a = await node('alpha', ['--serve', `9000:${webPort}`, '--metrics-listen', String(metricsPort)]);
    await node('bravo', ['--forward', `${fwd}:alpha:9000`]);
    // The local API socket is private to the owner.
    expect(statSync(join(dir, 'alpha', 'quackscale.sock')).mode & 0o777).toBe(0o600);
    const status = (await run(['status', '--state-dir', join(dir, 'bravo')])).stdout;
    expect(status).toMatch(/100\.64\.0\.\d+\s+bravo\s+self/);
    expect(status).toMatch(/100\.64\.0\.\d+\s+alpha\s+online\s+(derp local|direct 127\.0\.0\.1:\d+)/);
    const ping = (await run(['ping', '--state-dir', join(dir, 'bravo'), 'alpha', '-c', '2'])).stdout;
    expect(ping).toMatch(
      /^pong from alpha \(100\.64\.0\.\d+\) via (DERP\(local\)|127\.0\.0\.1:\d+) in \d+ms$/m,
    );
    const tsmp = (await run(['ping', '--state-dir', join(dir, 'bravo'), 'alpha', '--tsmp'])).stdout;
    expect(tsmp).toMatch(/^pong from alpha \(100\.64\.0\.\d+\) via TSMP in \d+ms$/m);
    // --json: `tailscale status --json`'s shape, which scripts parse.
    const json = JSON.parse((await run(['status', '--state-dir', join(dir, 'bravo'), '--json'])).stdout);
    expect(json).toMatchObject({ BackendState: 'Running', Self: { HostName: 'bravo' } });
    expect(Object.values(json.Peer).map((p) => (p as { HostName: string }).HostName)).toEqual(['alpha']);
    // netcheck with the running node's DERP map: the embedded relay's STUN answers on loopback.
    const nc = JSON.parse((await run(['netcheck', '--state-dir', join(dir, 'bravo'), '--json'])).stdout);
    expect(nc).toMatchObject({ UDP: true, IPv4: true, PreferredDERP: 900 });
    expect((await run(['netcheck', '--state-dir', join(dir, 'bravo')])).stdout).toMatch(
      /^\t\* Nearest DERP: quackscale embedded DERP$/m,
    );
    const body = await new Promise<string>((res, rej) => {
      http
        .get({ createConnection: () => net.connect(fwd, '127.0.0.1'), path: '/' }, (r) => {
          let t = '';
          r.on('data', (d) => (t += d));
          r.on('end', () => res(t));
        })
        .on('error', rej);
    });
    expect(body).toBe('served by alpha');
    const scrape = await fetch(`http://127.0.0.1:${metricsPort}/metrics`);
    expect(scrape.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
    expect(await scrape.text()).toMatch(
      /^quackscale_peer_sent_bytes_total\{peer="bravo",path="(derp|direct)"\} [1-9]\d*$/m,
    );
    const exited = new Promise((r) => a.on('exit', r));
    await run(['down', '--state-dir', join(dir, 'alpha')]);
    expect(await exited).toBe(0);
    await expect(run(['status', '--state-dir', join(dir, 'alpha')])).rejects.toThrow(/no node running/);
    await new Promise((r) => web.close(r));
  },
  60_000,
);
