/**
 * The sliding replay window for transport counters (WireGuard paper §5.4.6; RFC 6479's
 * bitmap ring, as wireguard-go `replay/replay.go`). A counter is accepted once, and only if
 * it is newer than the highest seen minus the window. It is checked only after the packet
 * authenticated, so forged packets cannot move the window.
 */
import { REPLAY_WINDOW_SIZE } from './constants.js';

const BLOCK_BITS = 32;
const RING_BLOCKS = (REPLAY_WINDOW_SIZE + 64) / BLOCK_BITS; // 256 blocks = 8192 bits
const RING_MASK = RING_BLOCKS - 1;
/** Packets further back than this behind the newest are rejected. */
export const WINDOW_SIZE = (RING_BLOCKS - 1) * BLOCK_BITS;

export class ReplayWindow {
  private readonly ring = new Uint32Array(RING_BLOCKS);
  private last = 0;

  /** Records `counter` and returns true if it is new and inside the window; false otherwise. */
  accept(counter: number, limit: number): boolean {
    if (!(counter >= 0 && counter < limit)) return false; // also rejects NaN
    const index = Math.floor(counter / BLOCK_BITS);
    if (counter > this.last) {
      const current = Math.floor(this.last / BLOCK_BITS);
      const diff = Math.min(index - current, RING_BLOCKS);
      for (let i = 1; i <= diff; i++) this.ring[(current + i) & RING_MASK] = 0;
      this.last = counter;
    } else if (this.last - counter > WINDOW_SIZE) {
      return false;
    }
    const block = index & RING_MASK;
    const bit = 1 << (counter % BLOCK_BITS);
    if (this.ring[block]! & bit) return false;
    this.ring[block] |= bit;
    return true;
  }

  reset(): void {
    this.ring.fill(0);
    this.last = 0;
  }
}
