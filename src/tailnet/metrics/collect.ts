/**
 * The node's metrics, read from the counters its parts keep anyway (magicsock per peer and path,
 * the WireGuard device, the IP stack, TCP, the packet filter, TSMP, DERP, control): collecting
 * them only reads numbers, so a scrape never touches the data path. Names follow Prometheus
 * conventions (a `quackscale_` prefix, base units, `_total` on counters); the per-peer traffic
 * splits by `path` as tailscaled's `tailscaled_{in,out}bound_{bytes,packets}_total` do
 * (wgengine/magicsock/magicsock.go registerMetrics), with `direct` for both address families.
 * docs/operations-tools.md lists every name.
 */

import { derpCodeIn, type NodeInternals } from '../internals.js';
import { keyBytes } from '../status.js';
import { type MetricFamily, type MetricSample, type MetricType, renderPrometheus } from './prometheus.js';

/** `no rule for tcp` → `no_rule_for_tcp`; `invalidMessages` → `invalid_messages`. */
const snake = (s: string) =>
  s
    .replace(/([a-z0-9])([A-Z])/g, '$1_$2')
    .replace(/[^A-Za-z0-9]+/g, '_')
    .toLowerCase();

/** The WireGuard device's drop counters (DeviceStats), by the reason each names. */
const WIREGUARD_DROPS = [
  'invalidMessages',
  'noRoute',
  'unknownIndex',
  'expiredKeypair',
  'decryptFailed',
  'replayed',
  'disallowedSource',
  'malformedInner',
  'handshakeQueueDrops',
  'badMac1',
  'rateLimited',
  'staleInitiations',
] as const;
/** The IP stack's (StackStats), each received packet counted in one of them or delivered. */
const STACK_DROPS = [
  'malformed',
  'badChecksum',
  'unsupported',
  'badSource',
  'notForUs',
  'fragmentsDropped',
  'unknownProtocol',
  'tooBig',
] as const;

/**
 * Every metric of the node now.
 *
 * @example
 * const text = renderPrometheus(collectMetrics(node));
 */
export function collectMetrics(node: NodeInternals, now = Date.now()): MetricFamily[] {
  const out: MetricFamily[] = [];
  const family = (name: string, type: MetricType, help: string, samples: MetricSample[]) => {
    out.push({ name: `quackscale_${name}`, type, help, samples });
  };
  const one = (value: number, labels: Record<string, string> = {}): MetricSample[] => [{ labels, value }];
  const { device, magicsock: ms, stack, tcp, tsmp, control, netmap } = node;
  const running = device !== undefined && !node.closed;
  family('up', 'gauge', 'Whether the node is up (logged in, WireGuard running).', one(running ? 1 : 0));

  // Per peer: only those with WireGuard configured or any traffic, so an idle 1,000-peer netmap
  // does not make 8,000 series of zeros.
  const wg = new Map((device?.status().peers ?? []).map((p) => [p.publicKey, p]));
  const traffic: Record<string, MetricSample[]> = { rxB: [], rxP: [], txB: [], txP: [] };
  const handshakes: MetricSample[] = [];
  const direct: MetricSample[] = [];
  for (const p of netmap?.peers.values() ?? []) {
    const key = keyBytes(p.nodeKey);
    const t = ms?.peerActivity(key)?.traffic;
    const w = wg.get(Buffer.from(key).toString('base64'));
    const any = t && t.directRxPackets + t.derpRxPackets + t.directTxPackets + t.derpTxPackets > 0;
    if (!any && !w) continue;
    const peer = p.shortName;
    for (const [path, rxB, rxP, txB, txP] of [
      ['direct', t?.directRxBytes, t?.directRxPackets, t?.directTxBytes, t?.directTxPackets],
      ['derp', t?.derpRxBytes, t?.derpRxPackets, t?.derpTxBytes, t?.derpTxPackets],
    ] as const) {
      const labels = { peer, path };
      traffic.rxB!.push({ labels, value: rxB ?? 0 });
      traffic.rxP!.push({ labels, value: rxP ?? 0 });
      traffic.txB!.push({ labels, value: txB ?? 0 });
      traffic.txP!.push({ labels, value: txP ?? 0 });
    }
    if (w?.latestHandshake !== undefined)
      handshakes.push({ labels: { peer }, value: w.latestHandshake / 1000 });
    direct.push({ labels: { peer }, value: ms?.pathOf(key).kind === 'direct' ? 1 : 0 });
  }
  const wgDesc = 'WireGuard datagrams (with their encryption overhead)';
  family(
    'peer_received_bytes_total',
    'counter',
    `${wgDesc}: bytes received, by peer and path.`,
    traffic.rxB!,
  );
  family('peer_received_packets_total', 'counter', `${wgDesc} received, by peer and path.`, traffic.rxP!);
  family('peer_sent_bytes_total', 'counter', `${wgDesc}: bytes sent, by peer and path.`, traffic.txB!);
  family('peer_sent_packets_total', 'counter', `${wgDesc} sent, by peer and path.`, traffic.txP!);
  family(
    'peer_last_handshake_timestamp_seconds',
    'gauge',
    'Unix time of the latest WireGuard handshake with the peer.',
    handshakes,
  );
  family(
    'peer_direct',
    'gauge',
    'Whether the peer is reached over a direct UDP path (1) or DERP (0).',
    direct,
  );
  const counts = device?.peerCounts ?? { configured: 0, lazy: 0 };
  family('peers', 'gauge', 'Netmap peers: WireGuard-configured, or lazy (configured on first packet).', [
    { labels: { state: 'configured' }, value: counts.configured },
    { labels: { state: 'lazy' }, value: counts.lazy },
  ]);

  const ds = device?.stats;
  family(
    'wireguard_handshakes_total',
    'counter',
    'WireGuard handshakes completed.',
    one(ds?.handshakesCompleted ?? 0),
  );
  family(
    'wireguard_handshake_initiations_total',
    'counter',
    'WireGuard handshake initiations sent, retries included.',
    one(ds?.handshakeInitiationsSent ?? 0),
  );
  family(
    'wireguard_handshake_timeouts_total',
    'counter',
    'Peers that gave up a handshake after every retry went unanswered.',
    one(ds?.handshakeTimeouts ?? 0),
  );
  family(
    'wireguard_handshake_errors_total',
    'counter',
    'Handshake messages that failed to verify or decrypt.',
    one(ds?.handshakeErrors ?? 0),
  );

  const drops: MetricSample[] = [];
  const drop = (layer: string, reason: string, value: number) =>
    drops.push({ labels: { layer, reason: snake(reason) }, value });
  for (const r of WIREGUARD_DROPS) drop('wireguard', r, ds?.[r] ?? 0);
  for (const r of STACK_DROPS) drop('ip', r, stack?.stats[r] ?? 0);
  drop('tcp', 'badChecksum', tcp?.stats.badChecksum ?? 0);
  drop('tcp', 'malformed', tcp?.stats.malformed ?? 0);
  drop('tcp', 'synsDropped', tcp?.stats.synsDropped ?? 0);
  for (const [r, v] of Object.entries(node.filter.stats.dropReasons)) drop('filter', r, v);
  const udp = ms?.udp.stats;
  drop('udp_socket', 'sendErrors', udp?.sendErrors ?? 0);
  drop('udp_socket', 'socketErrors', udp?.socketErrors ?? 0);
  family('dropped_packets_total', 'counter', 'Packets dropped, by layer and reason.', drops);

  const tcpStates = new Map<string, number>();
  for (const c of tcp?.list() ?? []) tcpStates.set(c.state, (tcpStates.get(c.state) ?? 0) + 1);
  family(
    'tcp_connections',
    'gauge',
    'TCP connections of the node over the tailnet, by state.',
    [...tcpStates].map(([state, value]) => ({ labels: { state }, value })),
  );
  family(
    'tcp_active_opens_total',
    'counter',
    'TCP connections the node opened.',
    one(tcp?.stats.activeOpens ?? 0),
  );
  family(
    'tcp_passive_opens_total',
    'counter',
    'TCP connections the node accepted.',
    one(tcp?.stats.passiveOpens ?? 0),
  );
  family(
    'tcp_retransmit_timeouts_total',
    'counter',
    'TCP retransmission timeouts.',
    one(tcp?.stats.timeouts ?? 0),
  );

  const ts = tsmp?.stats;
  family(
    'tsmp_messages_total',
    'counter',
    'TSMP messages: pings answered and sent, pongs matched, rejections sent and received.',
    [
      ['ping_answered', ts?.pingsAnswered],
      ['ping_sent', ts?.pingsSent],
      ['pong_matched', ts?.pongsMatched],
      ['pong_unmatched', ts?.pongsUnmatched],
      ['reject_sent', ts?.rejectsSent],
      ['reject_rate_limited', ts?.rejectsLimited],
      ['reject_received', ts?.rejectsReceived],
      ['ignored', ts?.ignored],
    ].map(([event, value]) => ({ labels: { event: event as string }, value: (value as number) ?? 0 })),
  );

  const derp = ms?.derpStats();
  family(
    'derp_connects_total',
    'counter',
    'DERP connections made, reconnects included.',
    one(derp?.connects ?? 0),
  );
  family(
    'derp_connect_failures_total',
    'counter',
    'DERP dials that reached no node of the region.',
    one(derp?.connectFailures ?? 0),
  );
  family(
    'derp_connected',
    'gauge',
    'DERP regions the node is connected to now.',
    (derp?.connected ?? []).map((r) => ({ labels: { region: derpCodeIn(node.netmap, r) }, value: 1 })),
  );
  family('home_derp_region_id', 'gauge', "The home DERP region's ID (0: none).", one(ms?.homeRegion ?? 0));

  const cs = control?.stats;
  family(
    'control_reconnects_total',
    'counter',
    'Map streams to control opened after the first (reconnects).',
    one(Math.max(0, (cs?.mapStreams ?? 0) - 1)),
  );
  const age = (at: number | undefined) => (at ? (now - at) / 1000 : Number.NaN);
  family(
    'control_last_message_age_seconds',
    'gauge',
    'Seconds since control last sent anything (keepalives included); NaN before the first.',
    one(age(cs?.lastMessageAt)),
  );
  family(
    'netmap_age_seconds',
    'gauge',
    'Seconds since the netmap last changed; NaN before the first.',
    one(age(cs?.lastNetmapAt)),
  );
  return out;
}

/** A scrape: the families as objects, and the same as Prometheus text. */
export interface NodeMetrics {
  families: MetricFamily[];
  text: string;
}

/**
 * {@link collectMetrics} and its Prometheus text together (what `Tailnet.metrics()` returns).
 *
 * @example
 * const { families, text } = nodeMetrics(node);
 */
export function nodeMetrics(node: NodeInternals): NodeMetrics {
  const families = collectMetrics(node);
  return { families, text: renderPrometheus(families) };
}
