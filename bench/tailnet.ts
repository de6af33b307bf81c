/**
 * Tailnet benchmarks (issues 7 and 13), all on one Headscale + derper on loopback, in one run:
 * - reference: two tailscaled (userspace networking) moving BULK_MB — curl through one's SOCKS5
 *   downloads from an HTTP server behind the other (tailscaled forwards inbound tailnet TCP to
 *   127.0.0.1, here to a server in this process), with the CPU time both daemons spent;
 * - ours in the same shape: curl through our node X's SOCKS5 (`up --socks5`) from the same
 *   server behind our node Y (`up --serve`), X and Y in processes of their own, with their CPU;
 * - ours: the same bytes as one TCP stream between two of our nodes in two processes over the
 *   direct UDP path, and over DERP only;
 * - time to `up`, and the idle RSS of a node next to tailscaled's.
 * Every node advertises only 127.0.0.1 endpoints, so nothing leaves loopback.
 */
import { type ChildProcess, fork } from 'node:child_process';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import net, { type AddressInfo } from 'node:net';
import { dirname, join } from 'node:path';
import type { Duplex } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { Tailnet } from '../src/tailnet/tailnet.js';
import {
  Derper,
  freePort,
  Headscale,
  missingPeers,
  Tailscaled,
  tempDir,
} from '../test/interop/control-peers.js';
import { Cleanup, exec, sleep, waitFor } from '../test/interop/rig/exec.js';
import { Report } from './report.js';
import type { PeerReady, PeerRequest, PeerSetup } from './tailnet-peer.js';

const MB = 1024 * 1024;
const BULK_MB = 200;
const DERP_MB = 50;
const REF = 'reference: tailscaled pair, curl via SOCKS5';
const REF_DERP = 'reference: tailscaled pair over DERP';
const REF_RTT = 'reference: tailscaled request latency (SOCKS5 echo)';
const REF_CPU = 'reference: tailscaled pair CPU per GB (curl via SOCKS5)';
const RTTS = 500;

export async function run(): Promise<Report> {
  const r = new Report('tailnet');
  const missing = missingPeers(['headscale', 'tailscaled', 'tailscale', 'derper']);
  if (missing.length > 0) {
    console.log(`  skipped: missing ${missing.join(', ')}`);
    return r;
  }
  const cleanup = new Cleanup();
  try {
    const derper = await Derper.start(cleanup);
    const hs = await Headscale.start(cleanup, { derpPort: derper.port });
    const key = await hs.createKey(await hs.createUser('bench'), { reusable: true });
    const webPort = await webServer(cleanup);
    await reference(r, cleanup, hs, key, webPort);
    await relayShape(r, cleanup, hs, key, webPort);
    await ours(r, cleanup, hs, key);
  } finally {
    await cleanup.run();
  }
  return r;
}

/** An HTTP server on 127.0.0.1 that sends `?mb=N` MB; returns its port. */
async function webServer(cleanup: Cleanup): Promise<number> {
  const chunk = Buffer.alloc(MB, 0x5a);
  const web = http.createServer((req, res) => {
    let left = Number(new URL(req.url ?? '/', 'http://x').searchParams.get('mb'));
    res.writeHead(200, { 'content-length': String(left * MB) });
    const pump = (): void => {
      while (left > 0) {
        left--;
        if (!res.write(chunk)) return void res.once('drain', pump);
      }
      res.end();
    };
    pump();
  });
  await new Promise<void>((res) => web.listen(0, '127.0.0.1', res));
  cleanup.add('web', () => new Promise((res) => web.close(res)));
  return (web.address() as AddressInfo).port;
}

/** Two tailscaled pairs (direct, then DERP only): curl through X's SOCKS5 downloads from this process via Y. */
async function reference(
  r: Report,
  cleanup: Cleanup,
  hs: Headscale,
  key: string,
  port: number,
): Promise<void> {
  const direct = await tsPair(cleanup, hs, key, 'direct', {});
  r.add({ name: 'reference: tailscaled time to `tailscale up`', value: direct.upMs, unit: 'ms' });
  await direct.x.cli(['ping', '-c', '10', '--until-direct', direct.yIp], 30_000);
  await sleep(2000);
  r.add({ name: 'reference: tailscaled idle RSS', value: rssOf(direct.x.proc!.pid) / MB, unit: 'MB' });
  const echo = net.createServer((c) => c.pipe(c));
  await new Promise<void>((res) => echo.listen(0, '127.0.0.1', res));
  cleanup.add('echo', () => new Promise((res) => echo.close(res)));
  const viaSocks = await socks5(direct.socks, direct.yIp, (echo.address() as AddressInfo).port);
  r.add({ name: REF_RTT, value: await roundTrips(viaSocks), unit: 'ms', note: `median of ${RTTS}, 64 B` });
  viaSocks.destroy();
  const pids = [direct.x.proc!.pid, direct.y.proc!.pid];
  const cpu0 = cpuOf(pids);
  const fast = await curlGet(direct.socks, `http://${direct.yIp}:${port}/?mb=${BULK_MB}`, BULK_MB);
  const cpu = cpuOf(pids) - cpu0;
  r.add({ name: REF, value: fast, unit: 'MB/s', note: `${BULK_MB} MB, direct path` });
  r.add({ name: REF_CPU, value: cpu / ((BULK_MB * MB) / 1e9), unit: 'CPU s/GB', note: 'both tailscaled' });
  await direct.x.stop();
  await direct.y.stop();

  const relayed = await tsPair(cleanup, hs, key, 'derp', { TS_DEBUG_ALWAYS_USE_DERP: '1' });
  const slow = await curlGet(relayed.socks, `http://${relayed.yIp}:${port}/?mb=${DERP_MB}`, DERP_MB);
  r.add({ name: REF_DERP, value: slow, unit: 'MB/s', note: `${DERP_MB} MB, TS_DEBUG_ALWAYS_USE_DERP=1` });
  await relayed.x.stop();
  await relayed.y.stop();
}

/** Two tailscaled on Headscale, X with a SOCKS5 server, once X sees Y. */
async function tsPair(
  cleanup: Cleanup,
  hs: Headscale,
  key: string,
  tag: string,
  env: Record<string, string>,
) {
  const socks = await freePort();
  const x = await Tailscaled.start(cleanup, `bench-x-${tag}`, { socks5Port: socks, env });
  const y = await Tailscaled.start(cleanup, `bench-y-${tag}`, { env });
  const t0 = performance.now();
  await x.up(hs.url, key, `bench-x-${tag}`);
  const upMs = performance.now() - t0;
  await y.up(hs.url, key, `bench-y-${tag}`);
  const yIp = (await y.status()).Self.TailscaleIPs.find((a) => a.startsWith('100.'))!;
  await waitFor(
    'tailscaled X sees Y',
    async () =>
      // …with Y's DERP home known (Relay), which a DERP-only pair needs before its first packet.
      Object.values((await x.status()).Peer ?? {}).some((p) => p.HostName === `bench-y-${tag}` && p.Relay) ||
      undefined,
    30_000,
    200,
  );
  return { x, y, socks, yIp, upMs };
}

/** curl through a SOCKS5 server (a port on 127.0.0.1, or a URL): MB/s of a download that must be `mb` MB. */
async function curlGet(socks: number | string, url: string, mb: number): Promise<number> {
  const proxy = typeof socks === 'number' ? `socks5h://127.0.0.1:${socks}` : socks;
  const args = ['-sS', '--fail', '-x', proxy, '-o', '/dev/null'];
  const res = await exec('curl', [...args, '-w', '%{size_download} %{time_total}', url], {
    timeoutMs: 300_000,
  });
  const [bytes, seconds] = res.stdout.trim().split(' ').map(Number) as [number, number];
  if (bytes !== mb * MB) throw new Error(`reference curl got ${bytes} bytes`);
  return bytes / seconds / 1e6;
}

/**
 * The reference's shape with our nodes: curl through X's SOCKS5 downloads from the server behind
 * Y's `serve`, X and Y each in a process of its own; their CPU time against the two tailscaled's.
 */
async function relayShape(
  r: Report,
  cleanup: Cleanup,
  hs: Headscale,
  key: string,
  webPort: number,
): Promise<void> {
  const y = await startPeer(cleanup, {
    controlURL: hs.url,
    authKey: key,
    hostname: 'bench-y',
    derpOnly: false,
    serve: { port: webPort, localPort: webPort },
  });
  const x = await startPeer(cleanup, {
    controlURL: hs.url,
    authKey: key,
    hostname: 'bench-x',
    derpOnly: false,
    socks5: true,
  });
  await waitFor(
    'bench-x reaches bench-y directly',
    async () => ((await x.ping('bench-y')).startsWith('127.') ? true : undefined),
    30_000,
    200,
  );
  const cpu0 = (await x.cpu()) + (await y.cpu());
  const mbps = await curlGet(x.socksURL!, `http://bench-y:${webPort}/?mb=${BULK_MB}`, BULK_MB);
  const cpu = (await x.cpu()) + (await y.cpu()) - cpu0;
  r.add({
    name: 'ours: curl via SOCKS5 to --serve',
    value: mbps,
    unit: 'MB/s',
    ratioTo: REF,
    note: `${BULK_MB} MB, direct path`,
  });
  r.add({
    name: 'ours: CPU per GB (curl via SOCKS5 to --serve)',
    value: cpu / ((BULK_MB * MB) / 1e9),
    unit: 'CPU s/GB',
    ratioTo: REF_CPU,
    note: 'both nodes',
  });
  await x.stop();
  await y.stop();
}

/** Our node here, its peers in child processes: bulk TCP over the direct path and over DERP. */
async function ours(r: Report, cleanup: Cleanup, hs: Headscale, key: string): Promise<void> {
  const port = await freePort();
  const a = new Tailnet({
    hostname: 'bench-a',
    controlURL: hs.url,
    authKey: key,
    stateDir: await tempDir(cleanup, 'qs-bench-a-'),
    derpHttp: true,
    port,
    endpoints: [`127.0.0.1:${port}`],
  });
  cleanup.add('close bench-a', () => a.close());
  const t0 = performance.now();
  await a.up();
  r.add({
    name: 'ours: time to up()',
    value: performance.now() - t0,
    unit: 'ms',
    ratioTo: 'reference: tailscaled time to `tailscale up`',
  });
  const b = await startPeer(cleanup, {
    controlURL: hs.url,
    authKey: key,
    hostname: 'bench-b',
    derpOnly: false,
  });
  await sleep(2000);
  r.add({
    name: 'ours: idle node RSS (child process)',
    value: (await b.rss()) / MB,
    unit: 'MB',
    ratioTo: 'reference: tailscaled idle RSS',
  });
  await waitFor(
    'bench-b in the netmap',
    () => a.peers().some((p) => p.hostname === 'bench-b') || undefined,
    30_000,
    100,
  );
  await waitFor(
    'a direct path to bench-b',
    async () => ((await a.ping('bench-b').catch(() => undefined))?.via.startsWith('127.') ? true : undefined),
    30_000,
    200,
  );
  const echo = await a.dial('bench-b', 5002);
  r.add({
    name: 'ours: request latency (TCP echo)',
    value: await roundTrips(echo),
    unit: 'ms',
    ratioTo: REF_RTT,
    note: `median of ${RTTS}, 64 B`,
  });
  echo.destroy();
  const direct = await bulk(a, 'bench-b', BULK_MB);
  const path = a.peers().find((p) => p.hostname === 'bench-b')?.path;
  r.add({
    name: 'ours: bulk TCP, 2 processes',
    value: direct,
    unit: 'MB/s',
    ratioTo: REF,
    note: `${BULK_MB} MB, ${path}`,
  });
  const c = await startPeer(cleanup, {
    controlURL: hs.url,
    authKey: key,
    hostname: 'bench-c',
    derpOnly: true,
  });
  await waitFor(
    'bench-c in the netmap',
    () => a.peers().some((p) => p.hostname === 'bench-c') || undefined,
    30_000,
    100,
  );
  const relayed = await bulk(a, 'bench-c', DERP_MB);
  const cPath = a.peers().find((p) => p.hostname === 'bench-c')?.path;
  r.add({
    name: 'ours: bulk TCP over DERP (derper)',
    value: relayed,
    unit: 'MB/s',
    ratioTo: REF_DERP,
    note: `${DERP_MB} MB, ${cPath}`,
  });
  await b.stop();
  await c.stop();
}

/** Sends `mb` MB on one TCP connection to the peer's sink; MB/s from connect to its byte count coming back. */
async function bulk(tn: Tailnet, host: string, mb: number): Promise<number> {
  const chunk = Buffer.alloc(MB, 0xa5);
  const s = await tn.dial(host, 5001, { timeout: 20_000 });
  const start = performance.now();
  const reply = new Promise<string>((resolve, reject) => {
    let text = '';
    s.on('data', (d: Buffer) => {
      text += d.toString();
    });
    s.on('end', () => resolve(text.trim()));
    s.on('error', reject);
  });
  for (let i = 0; i < mb; i++) {
    if (!s.write(chunk)) await new Promise((res) => s.once('drain', res));
  }
  s.end();
  const got = Number(await reply);
  const seconds = (performance.now() - start) / 1000;
  if (got !== mb * MB) throw new Error(`${host} received ${got} of ${mb * MB} bytes`);
  return (mb * MB) / seconds / 1e6;
}

interface Peer {
  ip: string;
  socksURL: string | undefined;
  rss(): Promise<number>;
  /** CPU seconds the child has used so far. */
  cpu(): Promise<number>;
  /** The path a ping to `host` took (`DERP(…)` or an address), or '' when none answered. */
  ping(host: string): Promise<string>;
  stop(): Promise<void>;
}

async function startPeer(cleanup: Cleanup, setup: Omit<PeerSetup, 'port'>): Promise<Peer> {
  const here = dirname(fileURLToPath(import.meta.url));
  const child: ChildProcess = fork(join(here, 'tailnet-peer.js'), [], {
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const exited = new Promise<void>((res) => child.once('exit', () => res()));
  const stop = async (): Promise<void> => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.send({ cmd: 'stop' } satisfies PeerRequest);
    const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(timer);
  };
  cleanup.add(`stop ${setup.hostname}`, stop);
  const reply = <T>() => new Promise<T>((res) => child.once('message', (m) => res(m as T)));
  const ready = reply<PeerReady>();
  child.send({ ...setup, port: await freePort() } satisfies PeerSetup);
  const { ip, socksURL } = await ready;
  const ask = async <T>(req: PeerRequest): Promise<T> => {
    const got = reply<T>();
    child.send(req);
    return got;
  };
  return {
    ip,
    socksURL,
    rss: async () => (await ask<{ rss: number }>({ cmd: 'rss' })).rss,
    cpu: async () => (await ask<{ cpuSeconds: number }>({ cmd: 'cpu' })).cpuSeconds,
    ping: async (host) => (await ask<{ via: string }>({ cmd: 'ping', host })).via,
    stop,
  };
}

/** CPU seconds (user + system) the processes have used so far, from /proc (in USER_HZ ticks of 10 ms). */
function cpuOf(pids: number[]): number {
  let ticks = 0;
  for (const pid of pids) {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    ticks += Number(fields[11]) + Number(fields[12]);
  }
  return ticks / 100;
}

/** Resident set size of a process, from /proc (bytes). */
function rssOf(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) * 1024 : Number.NaN;
}

/** Median ms of RTTS request/response round trips of 64 bytes on an echoing stream. */
async function roundTrips(s: Duplex): Promise<number> {
  const msg = Buffer.alloc(64, 1);
  let got = 0;
  let wake: (() => void) | undefined;
  s.on('data', (d: Buffer) => {
    got += d.length;
    wake?.();
  });
  s.resume(); // a paused stream (the SOCKS5 one) stays paused when a 'data' listener is added
  const times: number[] = [];
  for (let i = 1; i <= RTTS; i++) {
    const t0 = performance.now();
    const back = new Promise<void>((res) => {
      wake = () => got >= i * msg.length && res();
    });
    s.write(msg);
    await back;
    times.push(performance.now() - t0);
  }
  times.sort((x, y) => x - y);
  return times[Math.floor(times.length / 2)]!;
}

/** A TCP stream to ip:port through a SOCKS5 server on 127.0.0.1 (no auth, IPv4 CONNECT). */
async function socks5(port: number, ip: string, dstPort: number): Promise<net.Socket> {
  const s = net.connect(port, '127.0.0.1');
  const read = (n: number) =>
    new Promise<Buffer>((resolve, reject) => {
      let buf = Buffer.alloc(0);
      const onData = (d: Buffer): void => {
        buf = Buffer.concat([buf, d]);
        if (buf.length < n) return;
        s.off('data', onData);
        s.off('error', reject);
        if (buf.length > n) s.unshift(buf.subarray(n));
        resolve(buf.subarray(0, n));
      };
      s.on('data', onData);
      s.once('error', reject);
    });
  s.write(Buffer.from([5, 1, 0]));
  if ((await read(2))[1] !== 0) throw new Error('SOCKS5: no acceptable auth method');
  const req = Buffer.from([5, 1, 0, 1, ...ip.split('.').map(Number), dstPort >> 8, dstPort & 0xff]);
  s.write(req);
  const rep = await read(10);
  if (rep[1] !== 0) throw new Error(`SOCKS5 CONNECT failed: reply ${rep[1]}`);
  s.pause();
  return s;
}
