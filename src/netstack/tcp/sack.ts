import { seqGt, seqLe, seqLt, seqMax, seqMin } from './seq.js';

const MAX_BLOCKS = 1024;

/**
 * The sender's SACK scoreboard (RFC 6675 §3): the ranges above SND.UNA the receiver reported
 * holding, merged and sorted, from which recovery picks the holes to retransmit.
 */
export class SackScoreboard {
  /** Flat sorted [left, right) pairs, disjoint and non-adjacent. */
  readonly blocks: number[] = [];
  /** Bytes covered by {@link blocks}. */
  sacked = 0;

  /** The highest SACKed sequence number (right edge of the last block), or `fallback` when empty. */
  highest(fallback: number): number {
    return this.blocks.length > 0 ? this.blocks[this.blocks.length - 1]! : fallback;
  }

  /**
   * Adds the blocks of one ACK, ignoring any not strictly inside (una, max] (RFC 2018 §4: stale
   * or bogus blocks, including D-SACKs below the cumulative ACK). Returns whether anything new
   * was learned.
   */
  update(sack: readonly number[], una: number, max: number): boolean {
    let changed = false;
    for (let i = 0; i + 1 < sack.length; i += 2) {
      const l = seqMax(sack[i]!, una);
      const r = sack[i + 1]!;
      if (!seqLt(l, r) || seqGt(r, max)) continue;
      if (this.insert(l, r)) changed = true;
    }
    return changed;
  }

  /** Forgets everything at or below the new cumulative ACK. */
  advance(una: number): void {
    const b = this.blocks;
    let drop = 0;
    while (drop < b.length && seqLe(b[drop + 1]!, una)) {
      this.sacked -= (b[drop + 1]! - b[drop]!) >>> 0;
      drop += 2;
    }
    if (drop > 0) b.splice(0, drop);
    if (b.length > 0 && seqLt(b[0]!, una)) {
      this.sacked -= (una - b[0]!) >>> 0;
      b[0] = una;
    }
  }

  /** Forgets all blocks (after a retransmission timeout, RFC 6675 §5.1 allows it). */
  clear(): void {
    this.blocks.length = 0;
    this.sacked = 0;
  }

  /** Whether `seq` lies in a SACKed block. */
  isSacked(seq: number): boolean {
    const b = this.blocks;
    for (let i = 0; i < b.length; i += 2) {
      if (seqLt(seq, b[i]!)) return false;
      if (seqLt(seq, b[i + 1]!)) return true;
    }
    return false;
  }

  /**
   * The first byte at or after `from` and below `limit` that is not SACKed, with the length of
   * the hole from there (up to the next block or `limit`); undefined when there is none.
   */
  nextHole(from: number, limit: number): { seq: number; len: number } | undefined {
    let s = from;
    const b = this.blocks;
    for (let i = 0; i < b.length; i += 2) {
      if (seqLe(b[i + 1]!, s)) continue;
      if (seqLt(s, b[i]!)) {
        const end = seqMin(b[i]!, limit);
        return seqLt(s, end) ? { seq: s, len: (end - s) >>> 0 } : undefined;
      }
      s = b[i + 1]!;
    }
    return undefined;
  }

  /** Bytes not SACKed in [from, to). */
  holeBytes(from: number, to: number): number {
    if (!seqLt(from, to)) return 0;
    let n = (to - from) >>> 0;
    const b = this.blocks;
    for (let i = 0; i < b.length; i += 2) {
      const l = seqMax(b[i]!, from);
      const r = seqMin(b[i + 1]!, to);
      if (seqLt(l, r)) n -= (r - l) >>> 0;
    }
    return n;
  }

  private insert(l: number, r: number): boolean {
    const b = this.blocks;
    // A hostile receiver could report a block per byte; the scoreboard is advice (RFC 2018 §8),
    // so past this many blocks new ones are ignored and recovery falls back to the RTO.
    if (b.length >= 2 * MAX_BLOCKS) return false;
    let i = 0;
    while (i < b.length && seqLt(b[i + 1]!, l)) i += 2;
    if (i < b.length && seqLe(b[i]!, l) && seqLe(r, b[i + 1]!)) return false;
    let nl = l;
    let nr = r;
    let j = i;
    while (j < b.length && seqLe(b[j]!, nr)) {
      nl = seqMin(nl, b[j]!);
      nr = seqMax(nr, b[j + 1]!);
      this.sacked -= (b[j + 1]! - b[j]!) >>> 0;
      j += 2;
    }
    b.splice(i, j - i, nl, nr);
    this.sacked += (nr - nl) >>> 0;
    return true;
  }
}
