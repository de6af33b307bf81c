/**
 * Child process of the tailnet benchmark: one of our tailnet nodes (its own process, so sender
 * and receiver do not share an event loop) with a TCP sink on tailnet port 5001 that counts what
 * it receives until the sender closes, then answers with the byte count, and an echo on 5002;
 * optionally a SOCKS5 server (`up --socks5`) or a port served to a local one (`up --serve`).
 * Reports its address and time to `up`; on request, its resident set size, its CPU time, or
 * the path a ping to a peer takes.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Tailnet } from '../src/tailnet/tailnet.js';

export interface PeerSetup {
  controlURL: string;
  authKey: string;
  hostname: string;
  port: number;
  derpOnly: boolean;
  /** Start a SOCKS5 server; its URL comes back with the address. */
  socks5?: boolean;
  /** Serve tailnet port `port` to 127.0.0.1:`localPort` (tailscale serve --tcp). */
  serve?: { port: number; localPort: number };
}

export type PeerRequest = { cmd: 'rss' } | { cmd: 'cpu' } | { cmd: 'ping'; host: string } | { cmd: 'stop' };

/** What the child answers to `up`. */
export interface PeerReady {
  ip: string;
  upMs: number;
  socksURL: string | undefined;
}

process.once('message', async (setup: PeerSetup) => {
  const stateDir = mkdtempSync(join(tmpdir(), 'qs-bench-tn-'));
  const tn = new Tailnet({
    hostname: setup.hostname,
    controlURL: setup.controlURL,
    authKey: setup.authKey,
    stateDir,
    derpHttp: true,
    port: setup.port,
    // Only loopback is advertised: the benchmark's traffic never leaves 127.0.0.1.
    endpoints: setup.derpOnly ? [] : [`127.0.0.1:${setup.port}`],
    derpOnly: setup.derpOnly,
  });
  const t0 = performance.now();
  const st = await tn.up();
  const upMs = performance.now() - t0;
  const server = await tn.listen(5001);
  server.on('connection', (s) => {
    let bytes = 0;
    s.on('data', (d: Buffer) => {
      bytes += d.length;
    });
    s.on('end', () => s.end(`${bytes}\n`));
  });
  // An echo server for request latency.
  (await tn.listen(5002)).on('connection', (s) => s.pipe(s));
  const socks = setup.socks5 ? await tn.socks5() : undefined;
  if (setup.serve) await tn.serveLocal(setup.serve.port, setup.serve.localPort);
  process.on('message', async (m: PeerRequest) => {
    if (m.cmd === 'rss') {
      process.send!({ rss: process.memoryUsage().rss });
      return;
    }
    if (m.cmd === 'cpu') {
      const cpu = process.cpuUsage();
      process.send!({ cpuSeconds: (cpu.user + cpu.system) / 1e6 });
      return;
    }
    if (m.cmd === 'ping') {
      process.send!({ via: (await tn.ping(m.host).catch(() => undefined))?.via ?? '' });
      return;
    }
    await tn.close();
    rmSync(stateDir, { recursive: true, force: true });
    process.exit(0);
  });
  const ready: PeerReady = {
    ip: st.self.addresses.find((a) => a.startsWith('100.'))!,
    upMs,
    socksURL: socks?.url,
  };
  process.send!(ready);
});
