/**
 * Transport sessions and their rotation (WireGuard paper §5.4.5, §6; wireguard-go
 * `device/keypair.go`). A peer holds up to three: `previous` (still accepted while the
 * other side switches over), `current` (used to send) and `next` (a responder's new
 * session, confirmed by the first packet the initiator sends with it).
 */
import type { SessionKey } from './aead.js';
import { ReplayWindow } from './replay.js';

export class Keypair {
  /** Next counter to send with; incremented per packet. */
  sendCounter = 0;
  readonly replay = new ReplayWindow();

  constructor(
    readonly send: SessionKey,
    readonly receive: SessionKey,
    readonly isInitiator: boolean,
    readonly localIndex: number,
    readonly remoteIndex: number,
    /** Monotonic ms at derivation. */
    readonly created: number,
  ) {}

  /** Overwrites the key material (§6.3: keys are erased once they can no longer be used). */
  zero(): void {
    this.send.raw.fill(0);
    this.receive.raw.fill(0);
  }
}

export class Keypairs {
  previous: Keypair | undefined;
  current: Keypair | undefined;
  next: Keypair | undefined;

  /**
   * Installs a freshly derived session. Returns the keypairs that are no longer reachable,
   * for the caller to unregister and zero.
   */
  install(kp: Keypair): Keypair[] {
    const dropped: Keypair[] = [];
    if (kp.isInitiator) {
      // The initiator uses the new session at once. If an unconfirmed responder session
      // was pending, it becomes `previous` so late packets under it still decrypt.
      if (this.next) {
        if (this.previous) dropped.push(this.previous);
        this.previous = this.next;
        this.next = undefined;
        if (this.current) dropped.push(this.current);
      } else {
        if (this.previous) dropped.push(this.previous);
        this.previous = this.current;
      }
      this.current = kp;
    } else {
      // The responder must not send with the new session until the initiator has used it.
      if (this.next) dropped.push(this.next);
      this.next = kp;
      if (this.previous) dropped.push(this.previous);
      this.previous = undefined;
    }
    return dropped;
  }

  /**
   * Called when a packet authenticated under `kp`. If it is `next`, the initiator has
   * confirmed the session: rotate, and return the keypair dropped (or null if no rotation).
   */
  confirm(kp: Keypair): Keypair[] | null {
    if (kp !== this.next) return null;
    const dropped: Keypair[] = [];
    if (this.previous) dropped.push(this.previous);
    this.previous = this.current;
    this.current = kp;
    this.next = undefined;
    return dropped;
  }

  /** Every keypair held, for zeroing. */
  all(): Keypair[] {
    return [this.previous, this.current, this.next].filter((k): k is Keypair => k !== undefined);
  }

  clear(): Keypair[] {
    const all = this.all();
    this.previous = this.current = this.next = undefined;
    return all;
  }
}
