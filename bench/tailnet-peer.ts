/**
 * Child process of the tailnet benchmark: one of our tailnet nodes (its own process, so sender
 * and receiver do not share an event loop) with a TCP sink on tailnet port 5001 that counts what
 * it receives until the sender closes, then answers with the byte count, and an echo on 5002. Reports its address and
 * time to `up`; on request, its resident set size.
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
}

export type PeerRequest = { cmd: 'rss' } | { cmd: 'stop' };

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
  process.on('message', async (m: PeerRequest) => {
    if (m.cmd === 'rss') {
      process.send!({ rss: process.memoryUsage().rss });
      return;
    }
    await tn.close();
    rmSync(stateDir, { recursive: true, force: true });
    process.exit(0);
  });
  process.send!({ ip: st.self.addresses.find((a) => a.startsWith('100.')), upMs });
});
