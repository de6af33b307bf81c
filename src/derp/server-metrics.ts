/**
 * The DERP server's counters (the subset of derpserver.go ExpVar that an operator watches:
 * clients, packets, bytes, drops by reason) and their Prometheus text exposition.
 */

/** Why a packet was dropped (derpserver.go dropReason). */
export type DropReason =
  | 'unknown_dest'
  | 'unknown_dest_on_fwd'
  | 'gone_disconnected'
  | 'queue_head'
  | 'queue_tail'
  | 'write_error'
  | 'dup_client';

export const DROP_REASONS: readonly DropReason[] = [
  'unknown_dest',
  'unknown_dest_on_fwd',
  'gone_disconnected',
  'queue_head',
  'queue_tail',
  'write_error',
  'dup_client',
];

/**
 * Plain counters; the server increments them, `/metrics` renders them.
 *
 * @example
 * const m = new ServerMetrics(); m.accepts++; console.log(m.toPrometheus());
 */
export class ServerMetrics {
  accepts = 0;
  currentConnections = 0;
  currentHomeConnections = 0;
  packetsReceived = 0;
  bytesReceived = 0;
  packetsSent = 0;
  bytesSent = 0;
  packetsForwardedIn = 0;
  peerGoneDisconnectedFrames = 0;
  peerGoneNotHereFrames = 0;
  gotPing = 0;
  sentPong = 0;
  unknownFrames = 0;
  dupClientKeys = 0;
  dupClientConns = 0;
  dupClientConnTotal = 0;
  websocketAccepts = 0;
  rejectedOverLimit = 0;
  notAdmitted = 0;
  badInputCloses = 0;
  writeTimeouts = 0;
  /** Connections that sent no ClientInfo within the login deadline. */
  loginTimeouts = 0;
  /** Clients that said they answer pings, then left one unanswered past the pong deadline. */
  pongTimeouts = 0;
  /** Pongs not written because the client was not reading (derper drops them the same way). */
  pongsDropped = 0;
  /** Answers to our liveness Pings. */
  livenessPongs = 0;
  homeMovesIn = 0;
  homeMovesOut = 0;
  readonly packetsDropped = new Map<DropReason, number>(DROP_REASONS.map((r) => [r, 0]));
  readonly bytesDropped = new Map<DropReason, number>(DROP_REASONS.map((r) => [r, 0]));

  drop(reason: DropReason, bytes: number): void {
    this.packetsDropped.set(reason, this.packetsDropped.get(reason)! + 1);
    this.bytesDropped.set(reason, this.bytesDropped.get(reason)! + bytes);
  }

  /** Connections this core closed or refused, by reason, for the `connections_shed` family. */
  shed(): Array<[string, number]> {
    return [
      ['max_clients', this.rejectedOverLimit],
      ['timeout_login', this.loginTimeouts],
      ['timeout_pong', this.pongTimeouts],
      ['timeout_write', this.writeTimeouts],
      ['not_admitted', this.notAdmitted],
      ['bad_input', this.badInputCloses],
    ];
  }

  /** Total packets dropped for any reason. */
  get dropped(): number {
    let n = 0;
    for (const v of this.packetsDropped.values()) n += v;
    return n;
  }

  /** Prometheus text format 0.0.4, names prefixed `derp_` as derper's expvars. */
  toPrometheus(extra: Record<string, number> = {}): string {
    const lines: string[] = [];
    const metric = (name: string, type: 'counter' | 'gauge', help: string, value: number): void => {
      lines.push(`# HELP derp_${name} ${help}`, `# TYPE derp_${name} ${type}`, `derp_${name} ${value}`);
    };
    metric('accepts', 'counter', 'Connections accepted.', this.accepts);
    metric('current_connections', 'gauge', 'Logged-in client connections.', this.currentConnections);
    metric(
      'current_home_connections',
      'gauge',
      'Connections that said this is their home.',
      this.currentHomeConnections,
    );
    metric('packets_received', 'counter', 'Packets received from clients.', this.packetsReceived);
    metric('bytes_received', 'counter', 'Packet bytes received from clients.', this.bytesReceived);
    metric('packets_sent', 'counter', 'Packets written to clients.', this.packetsSent);
    metric('bytes_sent', 'counter', 'Packet bytes written to clients.', this.bytesSent);
    metric('packets_forwarded_in', 'counter', 'Packets forwarded in by mesh peers.', this.packetsForwardedIn);
    metric(
      'peer_gone_disconnected_frames',
      'counter',
      'PeerGone(disconnected) frames sent.',
      this.peerGoneDisconnectedFrames,
    );
    metric(
      'peer_gone_not_here_frames',
      'counter',
      'PeerGone(not here) frames sent.',
      this.peerGoneNotHereFrames,
    );
    metric('got_ping', 'counter', 'Ping frames received.', this.gotPing);
    metric('sent_pong', 'counter', 'Pong frames sent.', this.sentPong);
    metric('unknown_frames', 'counter', 'Frames of unknown type skipped.', this.unknownFrames);
    metric('current_dup_client_keys', 'gauge', 'Keys connected more than once.', this.dupClientKeys);
    metric('current_dup_client_conns', 'gauge', 'Connections sharing a key.', this.dupClientConns);
    metric(
      'total_dup_client_conns',
      'counter',
      'Connections accepted while their key was connected.',
      this.dupClientConnTotal,
    );
    metric('websocket_accepts', 'counter', 'WebSocket connections accepted.', this.websocketAccepts);
    metric(
      'rejected_over_limit',
      'counter',
      'Connections refused by the client limit.',
      this.rejectedOverLimit,
    );
    metric('not_admitted', 'counter', 'Clients refused by admission control.', this.notAdmitted);
    metric('bad_input_closes', 'counter', 'Connections closed for malformed input.', this.badInputCloses);
    metric(
      'write_timeouts',
      'counter',
      'Connections closed because writes made no progress.',
      this.writeTimeouts,
    );
    metric(
      'login_timeouts',
      'counter',
      'Connections closed for sending no ClientInfo in time.',
      this.loginTimeouts,
    );
    metric(
      'pong_timeouts',
      'counter',
      'Clients closed for leaving a server ping unanswered.',
      this.pongTimeouts,
    );
    metric('pongs_dropped', 'counter', 'Pongs not sent to clients that were not reading.', this.pongsDropped);
    metric(
      'liveness_pongs',
      'counter',
      'Answers to the liveness Pings sent with keepalives.',
      this.livenessPongs,
    );
    metric('home_moves_in', 'counter', 'Clients that made this server their home.', this.homeMovesIn);
    metric('home_moves_out', 'counter', 'Clients that moved their home away.', this.homeMovesOut);
    for (const [name, value] of Object.entries(extra)) metric(name, 'gauge', name.replace(/_/g, ' '), value);
    lines.push(
      '# HELP derp_packets_dropped Packets dropped, by reason.',
      '# TYPE derp_packets_dropped counter',
    );
    for (const [r, v] of this.packetsDropped) lines.push(`derp_packets_dropped{reason="${r}"} ${v}`);
    lines.push('# HELP derp_bytes_dropped Bytes dropped, by reason.', '# TYPE derp_bytes_dropped counter');
    for (const [r, v] of this.bytesDropped) lines.push(`derp_bytes_dropped{reason="${r}"} ${v}`);
    return `${lines.join('\n')}\n`;
  }
}
