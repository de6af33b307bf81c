// Two of our nodes on a fresh embedded local tailnet (our control server and DERP relay in this process),
// DERP only (no endpoints advertised), ready once the first knows the second with its DERP home.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AclPolicy } from '../../src/control/server/policy.js';
import { type LocalTailnet, startLocalTailnet } from '../../src/tailnet/local.js';
import { Tailnet } from '../../src/tailnet/tailnet.js';

export const tmp = (p: string) => mkdtempSync(join(tmpdir(), p));

export interface LocalPair {
  local: LocalTailnet;
  a: Tailnet;
  b: Tailnet;
  /** A node that joins with a fresh key (closed by `close` too). */
  node(hostname: string): Promise<Tailnet>;
  close(): Promise<void>;
}

/** Starts the local tailnet and nodes `names[0]` and `names[1]`. */
export async function localPair(names: [string, string], policy?: AclPolicy): Promise<LocalPair> {
  const local = await startLocalTailnet({ stateDir: tmp('qs-pair-'), policy });
  const nodes: Tailnet[] = [];
  const node = async (hostname: string) => {
    const tn = new Tailnet({
      hostname,
      controlURL: local.controlURL,
      authKey: await local.authKey(),
      stateDir: tmp('qs-pair-n-'),
      endpoints: [],
    });
    nodes.push(tn);
    await tn.up();
    return tn;
  };
  const a = await node(names[0]);
  const b = await node(names[1]);
  // Until control has told `a` of b with its DERP home (which b reports once connected).
  const deadline = Date.now() + 10_000;
  const seen = () => Object.values(a.tailscaleStatus().Peer ?? {}).some((p) => p.Relay !== '');
  while (!seen() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  return {
    local,
    a,
    b,
    node,
    close: async () => {
      for (const n of nodes) await n.close();
      await local.close();
    },
  };
}
