/**
 * DERP protocol constants, named as in Tailscale's derp/derp.go (v1.102.3). Durations are in
 * milliseconds here where derp.go uses time.Duration.
 */

/** Largest packet payload a client may send or receive (derp.go MaxPacketSize). */
export const MaxPacketSize = 64 << 10;
/** The 8-byte magic `DERP🔑` opening the FrameServerKey payload (derp.go Magic). */
export const Magic: Uint8Array = new Uint8Array([0x44, 0x45, 0x52, 0x50, 0xf0, 0x9f, 0x94, 0x91]);
export const NonceLen = 24;
/** One type byte plus a 4-byte big-endian payload length. */
export const FrameHeaderLen = 1 + 4;
export const KeyLen = 32;
/** Upper bound for a ServerInfo/ClientInfo JSON box (derp.go MaxInfoLen). */
export const MaxInfoLen = 1 << 20;
/** The server sends a keepalive at least this often (derp.go KeepAlive, 60 s). */
export const KeepAlive = 60_000;
/** v2: FrameRecvPacket starts with the 32-byte source key (derp.go ProtocolVersion). */
export const ProtocolVersion = 2;

export const FrameServerKey = 0x01;
export const FrameClientInfo = 0x02;
export const FrameServerInfo = 0x03;
export const FrameSendPacket = 0x04;
export const FrameRecvPacket = 0x05;
export const FrameKeepAlive = 0x06;
export const FrameNotePreferred = 0x07;
export const FramePeerGone = 0x08;
export const FramePeerPresent = 0x09;
export const FrameForwardPacket = 0x0a;
export const FrameWatchConns = 0x10;
export const FrameClosePeer = 0x11;
export const FramePing = 0x12;
export const FramePong = 0x13;
export const FrameHealth = 0x14;
export const FrameRestarting = 0x15;

/** Every frame type of protocol version 2, for names in logs and errors. */
export const FrameNames: Readonly<Record<number, string>> = {
  [FrameServerKey]: 'ServerKey',
  [FrameClientInfo]: 'ClientInfo',
  [FrameServerInfo]: 'ServerInfo',
  [FrameSendPacket]: 'SendPacket',
  [FrameRecvPacket]: 'RecvPacket',
  [FrameKeepAlive]: 'KeepAlive',
  [FrameNotePreferred]: 'NotePreferred',
  [FramePeerGone]: 'PeerGone',
  [FramePeerPresent]: 'PeerPresent',
  [FrameForwardPacket]: 'ForwardPacket',
  [FrameWatchConns]: 'WatchConns',
  [FrameClosePeer]: 'ClosePeer',
  [FramePing]: 'Ping',
  [FramePong]: 'Pong',
  [FrameHealth]: 'Health',
  [FrameRestarting]: 'Restarting',
};

/** PeerGone reason byte (derp.go PeerGoneReasonType). */
export const PeerGoneReasonDisconnected = 0x00;
export const PeerGoneReasonNotHere = 0x01;

/** PeerPresent flag bits (derp.go PeerPresentFlags). */
export const PeerPresentIsRegular = 1 << 0;
export const PeerPresentIsMeshPeer = 1 << 1;
export const PeerPresentIsProber = 1 << 2;
export const PeerPresentNotIdeal = 1 << 3;

/** HTTP headers of the upgrade request (derp.go IdealNodeHeader, FastStartHeader). */
export const IdealNodeHeader = 'Ideal-Node';
export const FastStartHeader = 'Derp-Fast-Start';

/** Payload length of Ping and Pong frames. */
export const PingLen = 8;

/**
 * A ClientInfo larger than this is refused before it is read: the client is not trusted yet
 * (derpserver.go recvClientKey, 256 KiB).
 */
export const MaxClientInfoLen = 256 << 10;
/** Ping bodies above this are refused (derpserver.go handleFramePing). */
export const MaxPingLen = 1000;
/** A client-side receive gives up on frames above this (derp_client.go recvTimeout, 1 MiB). */
export const MaxClientFrameLen = 1 << 20;
/** Per-client packets queued while the socket is backed up (derpserver.go defaultPerClientSendQueueDepth). */
export const DefaultPerClientSendQueueDepth = 32;
/** Writes to a client that make no progress for this long close it (derpserver.go DefaultTCPWiteTimeout). */
export const DefaultTCPWriteTimeout = 2_000;
/** Login (ServerKey to ClientInfo) must finish within this (derpserver.go accept, 10 s deadline). */
export const LoginTimeout = 10_000;
/** The disco magic `TS💬` (disco/disco.go Magic): the server prioritises and PeerGones these. */
export const DiscoMagic: Uint8Array = new Uint8Array([0x54, 0x53, 0xf0, 0x9f, 0x92, 0xac]);
