/**
 * Child process of the `tailnet-peers` benchmark: one of our tailnet nodes, alone in its process
 * (so its resident set is its own), that joins, reports its time to `up` and its netmap size,
 * and then idles until told to stop. Advertises only 127.0.0.1.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Tailnet } from '../src/tailnet/tailnet.js';

export interface PeersNodeSetup {
  controlURL: string;
  authKey: string;
  hostname: string;
  port: number;
}

export type PeersNodeRequest = { cmd: 'status' } | { cmd: 'stop' };

/** What the node reports: after `up`, and on each status request. */
export interface PeersNodeReport {
  upMs: number;
  peers: number;
  wireguard: { configured: number; lazy: number };
  heapUsed: number;
}

process.once('message', async (setup: PeersNodeSetup) => {
  const stateDir = mkdtempSync(join(tmpdir(), 'qs-bench-peers-'));
  const tn = new Tailnet({
    hostname: setup.hostname,
    controlURL: setup.controlURL,
    authKey: setup.authKey,
    stateDir,
    port: setup.port,
    endpoints: [`127.0.0.1:${setup.port}`],
  });
  const t0 = performance.now();
  await tn.up();
  const upMs = performance.now() - t0;
  const report = (): PeersNodeReport => {
    const st = tn.status();
    return {
      upMs,
      peers: st.peers.length,
      wireguard: st.wireguardPeers,
      heapUsed: process.memoryUsage().heapUsed,
    };
  };
  process.on('message', async (m: PeersNodeRequest) => {
    if (m.cmd === 'status') {
      process.send!(report());
      return;
    }
    await tn.close();
    rmSync(stateDir, { recursive: true, force: true });
    process.exit(0);
  });
  process.send!(report());
});
