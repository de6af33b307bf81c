// The node's metrics (metrics/collect.ts) on the embedded local tailnet, before and after traffic: per-peer
// bytes and packets by path, handshakes, drops by reason, TCP connections by state, DERP and control.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LocalTailnet } from '../../../src/tailnet/local.js';
import type { MetricFamily } from '../../../src/tailnet/metrics/prometheus.js';
import { Tailnet } from '../../../src/tailnet/tailnet.js';
import { type LocalPair, localPair, tmp } from '../local-pair.js';

/** The sample of `name` whose labels include `labels`, or undefined. */
function value(fams: MetricFamily[], name: string, labels: Record<string, string> = {}): number | undefined {
  const f = fams.find((x) => x.name === name);
  const s = f?.samples.find((x) => Object.entries(labels).every(([k, v]) => x.labels[k] === v));
  return s?.value;
}

describe('tn.metrics()', () => {
  let pair: LocalPair;
  let local: LocalTailnet;
  let a: Tailnet;
  let b: Tailnet;
  beforeAll(async () => {
    pair = await localPair(['malpha', 'mbravo'], {
      acls: [{ action: 'accept', src: ['*'], dst: ['mbravo:7002'] }],
    });
    ({ local, a, b } = pair);
  });
  afterAll(() => pair.close());

  it('an idle peer has no series; up, DERP, control and netmap age are there from the start', () => {
    const m = a.metrics().families;
    expect(value(m, 'quackscale_up')).toBe(1);
    expect(m.find((f) => f.name === 'quackscale_peer_sent_bytes_total')?.samples).toEqual([]);
    expect(value(m, 'quackscale_peers', { state: 'lazy' })).toBe(1);
    expect(value(m, 'quackscale_derp_connects_total')).toBeGreaterThanOrEqual(1);
    expect(value(m, 'quackscale_derp_connected', { region: 'local' })).toBe(1);
    expect(value(m, 'quackscale_home_derp_region_id')).toBe(900);
    expect(value(m, 'quackscale_control_reconnects_total')).toBe(0);
    expect(value(m, 'quackscale_netmap_age_seconds')).toBeGreaterThanOrEqual(0);
    expect(value(m, 'quackscale_netmap_age_seconds')).toBeLessThan(30);
    // Every family's name is a valid Prometheus name, and counters end in _total.
    for (const f of m) {
      expect(f.name).toMatch(/^quackscale_[a-z_]+$/);
      if (f.type === 'counter') expect(f.name).toMatch(/_total$/);
    }
  });

  it('traffic shows per peer and path, with handshakes, TCP states and filter drops by reason', async () => {
    (await b.listen(7002)).on('connection', (s) => s.pipe(s));
    const sock = await a.dial('mbravo', 7002);
    let back = 0;
    const got = new Promise<void>((r) =>
      sock.on('data', (d: Buffer) => {
        back += d.length;
        if (back === 50_000) r();
      }),
    );
    sock.write(Buffer.alloc(50_000, 1));
    await got; // all of it echoed
    const m = a.metrics().families;
    expect(value(m, 'quackscale_peer_sent_bytes_total', { peer: 'mbravo', path: 'derp' })).toBeGreaterThan(
      50_000,
    );
    expect(value(m, 'quackscale_peer_sent_packets_total', { peer: 'mbravo', path: 'derp' })).toBeGreaterThan(
      30,
    );
    expect(
      value(m, 'quackscale_peer_received_bytes_total', { peer: 'mbravo', path: 'derp' }),
    ).toBeGreaterThan(0);
    expect(value(m, 'quackscale_peer_sent_bytes_total', { peer: 'mbravo', path: 'direct' })).toBe(0);
    expect(value(m, 'quackscale_peer_direct', { peer: 'mbravo' })).toBe(0);
    expect(value(m, 'quackscale_wireguard_handshakes_total')).toBe(1);
    expect(value(m, 'quackscale_wireguard_handshake_initiations_total')).toBe(1);
    expect(value(m, 'quackscale_peers', { state: 'configured' })).toBe(1);
    expect(value(m, 'quackscale_tcp_connections', { state: 'ESTABLISHED' })).toBe(1);
    const hs = value(m, 'quackscale_peer_last_handshake_timestamp_seconds', { peer: 'mbravo' })!;
    expect(Math.abs(hs - Date.now() / 1000)).toBeLessThan(10);
    sock.destroy();

    await expect(a.dial('mbravo', 7003, { timeout: 5000 })).rejects.toMatchObject({ code: 'EHOSTUNREACH' });
    const mb = b.metrics().families;
    expect(
      value(mb, 'quackscale_dropped_packets_total', { layer: 'filter', reason: 'no_rule_for_tcp' }),
    ).toBe(1);
    expect(value(mb, 'quackscale_tsmp_messages_total', { event: 'reject_sent' })).toBe(1);
    expect(value(a.metrics().families, 'quackscale_tsmp_messages_total', { event: 'reject_received' })).toBe(
      1,
    );
    // The text form has the same numbers.
    expect(b.metrics().text).toMatch(
      /^quackscale_dropped_packets_total\{layer="filter",reason="no_rule_for_tcp"\} 1$/m,
    );
  });

  it('a node not up yet: zeros and NaN ages, never a throw', async () => {
    const tn = new Tailnet({
      hostname: 'idle',
      controlURL: local.controlURL,
      stateDir: tmp('qs-metrics-i-'),
    });
    const m = tn.metrics().families;
    expect(value(m, 'quackscale_up')).toBe(0);
    expect(value(m, 'quackscale_netmap_age_seconds')).toBeNaN();
    expect(tn.metrics().text).toMatch(/^quackscale_netmap_age_seconds NaN$/m);
    await tn.close();
  });
});
