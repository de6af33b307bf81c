/**
 * Child process of the soak: one of our tailnet nodes, alone in its process (so its resident set
 * is its own), with WireGuard's timers on a fast clock (many rekeys), an echo service on tailnet
 * port 5001, and the flows it is told to run to other nodes. Reports on request: its flows, the
 * handshakes it has seen per peer, its RSS and its paths.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Duplex } from 'node:stream';
import { Tailnet } from '../src/tailnet/tailnet.js';
import { scaledClock } from '../src/wireguard/clock.js';
import { EchoFlow, echo, type FlowReport } from './soak-flow.js';

export const ECHO_PORT = 5001;

export interface SoakNodeSetup {
  controlURL: string;
  authKey: string;
  hostname: string;
  port: number;
  /** Relay everything through DERP (no direct path), so a DERP restart hits this node's traffic. */
  derpOnly: boolean;
  clockFactor: number;
}

export type SoakNodeRequest =
  | { cmd: 'flows'; targets: { name: string; host: string; port: number }[]; rate: number; window: number }
  | { cmd: 'report' }
  /** Stop this node's flows (after the last bytes come back); the node stays up for others' flows. */
  | { cmd: 'stop-flows' }
  | { cmd: 'stop' };

export interface SoakNodeReport {
  address: string;
  /** TCP control blocks of this node's flow sockets and echo sockets (for a flow that failed). */
  tcp: Record<string, unknown>;
  rss: number;
  flows: FlowReport[];
  /** Distinct WireGuard handshakes seen per peer hostname (polled every 500 ms). */
  handshakes: Record<string, number>;
  paths: Record<string, string>;
}

/** What a stuck connection's control block shows (netstack internals, read for diagnosis only). */
function tcpState(sock: Duplex): unknown {
  const c = (sock as unknown as { conn?: Record<string, unknown> & { rto?: { current(): number } } }).conn;
  if (!c) return 'no connection';
  const pick = ['state', 'sndUna', 'sndNxt', 'sndMax', 'sndWnd', 'rcvNxt', 'rcvAdv', 'inRecovery', 'dupAcks'];
  return {
    ...Object.fromEntries(pick.map((k) => [k, c[k]])),
    sendBuffered: (c.sendBuf as { length: number } | undefined)?.length,
    received: (c.rx as { bytes: number } | undefined)?.bytes,
    cwnd: (c.cc as { cwnd: number } | undefined)?.cwnd,
    rtoMs: c.rto?.current(),
  };
}

process.once('message', async (setup: SoakNodeSetup) => {
  const stateDir = mkdtempSync(join(tmpdir(), 'qs-soak-node-'));
  const tn = new Tailnet({
    hostname: setup.hostname,
    controlURL: setup.controlURL,
    authKey: setup.authKey,
    stateDir,
    port: setup.port,
    // Only loopback is advertised: the soak's traffic never leaves 127.0.0.1.
    endpoints: setup.derpOnly ? [] : [`127.0.0.1:${setup.port}`],
    derpOnly: setup.derpOnly,
    wireguardClock: scaledClock(setup.clockFactor),
  });
  const st = await tn.up();
  const echoes: Duplex[] = [];
  (await tn.listen(ECHO_PORT)).on('connection', (s: Duplex) => {
    echoes.push(s);
    echo(s);
  });

  const flows: EchoFlow[] = [];
  const flowSockets = new Map<string, Duplex>();
  const seen = new Map<string, Set<number>>();
  const poll = setInterval(() => {
    for (const p of tn.status().peers) {
      if (p.lastHandshake === undefined) continue;
      const s = seen.get(p.hostname) ?? new Set<number>();
      s.add(p.lastHandshake);
      seen.set(p.hostname, s);
    }
  }, 500);

  const report = (): SoakNodeReport => ({
    address: st.self.addresses.find((a) => a.startsWith('100.'))!.replace(/\/\d+$/, ''),
    rss: process.memoryUsage().rss,
    flows: flows.map((f) => f.report()),
    handshakes: Object.fromEntries([...seen].map(([h, s]) => [h, s.size])),
    paths: Object.fromEntries(tn.status().peers.map((p) => [p.hostname, p.path])),
    tcp: {
      ...Object.fromEntries([...flowSockets].map(([name, s]) => [`flow ${name}`, tcpState(s)])),
      ...Object.fromEntries(
        echoes.map((s, i) => [
          `echo ${i} from ${(s as { remoteAddress?: string }).remoteAddress}`,
          tcpState(s),
        ]),
      ),
    },
  });

  process.on('message', async (m: SoakNodeRequest) => {
    if (m.cmd === 'flows') {
      for (const t of m.targets) {
        const sock = await tn.dial(t.host, t.port);
        flowSockets.set(t.name, sock);
        const flow = new EchoFlow(t.name, sock, { rate: m.rate, window: m.window });
        flows.push(flow);
        flow.start();
      }
      process.send!(report());
    } else if (m.cmd === 'report') {
      process.send!(report());
    } else if (m.cmd === 'stop-flows') {
      await Promise.all(flows.map((f) => f.stop()));
      process.send!(report());
    } else {
      clearInterval(poll);
      const last = report();
      await tn.close();
      rmSync(stateDir, { recursive: true, force: true });
      process.send!(last, () => process.exit(0));
    }
  });
  process.send!(report());
});
