/**
 * The receiver indices this device hands out (whitepaper §5.4.2, wireguard-go indextable.go):
 * a random 32-bit index per pending handshake, then per session keypair, so that a transport
 * message finds its keypair — and a handshake response its initiation — with one lookup.
 */
import { randomBytes } from './crypto.js';
import type { Keypair } from './keypair.js';
import { readU32 } from './messages.js';
import type { Peer } from './peer.js';

/** What an index stands for: a pending handshake (no keypair yet) or a session. */
export interface IndexEntry {
  peer: Peer;
  keypair: Keypair | undefined;
}

export class IndexTable {
  private readonly entries = new Map<number, IndexEntry>();

  /** A fresh random index for `peer`'s next handshake. */
  allocate(peer: Peer): number {
    for (;;) {
      const index = readU32(randomBytes(4), 0);
      if (!this.entries.has(index)) {
        this.entries.set(index, { peer, keypair: undefined });
        return index;
      }
    }
  }

  /** The handshake's index now names its session keypair. */
  register(peer: Peer, kp: Keypair): void {
    this.entries.set(kp.localIndex, { peer, keypair: kp });
  }

  release(index: number): void {
    this.entries.delete(index);
  }

  get(index: number): IndexEntry | undefined {
    return this.entries.get(index);
  }

  /** The peer an index belongs to, if it is a pending handshake (not a session). */
  pendingHandshakePeer(index: number): Peer | undefined {
    const e = this.entries.get(index);
    return e && !e.keypair && e.peer.pending?.localIndex === index ? e.peer : undefined;
  }
}
