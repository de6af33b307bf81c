import { seqAdd, seqDiff, seqGe, seqGt, seqLe, seqLt } from './seq.js';

interface Piece {
  seq: number;
  data: Uint8Array;
}

/**
 * Out-of-order segments waiting for the hole before them (RFC 9293 §3.10.7.4, "segment text"),
 * and the SACK blocks that describe them (RFC 2018 §4). The connection only offers bytes that
 * fit the receive window, so this never holds more than the window.
 */
export class Reassembly {
  private readonly pieces: Piece[] = [];
  /** Bytes held. */
  bytes = 0;
  /** Sequence number of an out-of-order FIN, or -1. */
  finSeq = -1;
  /** The block containing the most recently received segment, reported first (RFC 2018 §4). */
  private lastSeq = -1;

  /**
   * Most pieces held. The window bounds the bytes, but a peer sending 1-byte segments at every
   * other offset would otherwise cost an object per byte; past this, new out-of-order data is
   * dropped (RFC 9293 lets a receiver discard it; the sender will retransmit), as Linux prunes
   * its out-of-order queue under memory pressure.
   */
  static readonly MAX_PIECES = 4096;

  /**
   * Stores a copy of `buf[off, off+len)` at `seq` (above RCV.NXT), trimming any overlap. Returns
   * false when the queue is full and the data was dropped.
   */
  insert(seq: number, buf: Uint8Array, off: number, len: number): boolean {
    if (this.pieces.length >= Reassembly.MAX_PIECES) return false;
    let s = seq;
    let o = off;
    let n = len;
    const p = this.pieces;
    let i = 0;
    while (i < p.length && seqLe(seqAdd(p[i]!.seq, p[i]!.data.length), s)) i++;
    while (n > 0) {
      const next = p[i];
      if (next && seqLe(next.seq, s)) {
        // Already held: skip past this piece.
        const skip = Math.min(n, seqDiff(seqAdd(next.seq, next.data.length), s));
        s = seqAdd(s, skip);
        o += skip;
        n -= skip;
        i++;
        continue;
      }
      const take = next ? Math.min(n, seqDiff(next.seq, s)) : n;
      p.splice(i, 0, { seq: s, data: buf.slice(o, o + take) });
      this.bytes += take;
      s = seqAdd(s, take);
      o += take;
      n -= take;
      i++;
    }
    this.lastSeq = seq;
    return true;
  }

  /**
   * Hands every byte now contiguous with `rcvNxt` to `deliver` in order and returns the new
   * RCV.NXT (not counting a FIN, which the caller checks with {@link finSeq}).
   */
  drain(rcvNxt: number, deliver: (data: Uint8Array) => void): number {
    let next = rcvNxt;
    const p = this.pieces;
    let i = 0;
    while (i < p.length && seqLe(p[i]!.seq, next)) {
      const piece = p[i]!;
      const end = seqAdd(piece.seq, piece.data.length);
      if (seqGt(end, next)) {
        deliver(piece.data.subarray(seqDiff(next, piece.seq)));
        next = end;
      }
      this.bytes -= piece.data.length;
      i++;
    }
    if (i > 0) p.splice(0, i);
    return next;
  }

  /** Whether nothing is held. */
  get empty(): boolean {
    return this.pieces.length === 0;
  }

  /**
   * Up to `max` SACK blocks as flat pairs into `out`; the block holding the latest segment first,
   * then the others in order. Returns the number of blocks.
   */
  sackBlocks(out: number[], max: number): number {
    out.length = 0;
    const p = this.pieces;
    const blocks: number[] = [];
    for (let i = 0; i < p.length; ) {
      const l = p[i]!.seq;
      let r = seqAdd(l, p[i]!.data.length);
      i++;
      while (i < p.length && p[i]!.seq === r) r = seqAdd(r, p[i++]!.data.length);
      blocks.push(l, r);
    }
    for (let i = 0; i < blocks.length; i += 2) {
      if (this.lastSeq >= 0 && seqGe(this.lastSeq, blocks[i]!) && seqLt(this.lastSeq, blocks[i + 1]!)) {
        out.push(blocks[i]!, blocks[i + 1]!);
        blocks.splice(i, 2);
        break;
      }
    }
    for (let i = 0; i < blocks.length && out.length < max * 2; i += 2) out.push(blocks[i]!, blocks[i + 1]!);
    return out.length / 2;
  }

  /** Drops everything (the connection is gone). */
  clear(): void {
    this.pieces.length = 0;
    this.bytes = 0;
    this.finSeq = -1;
  }
}
