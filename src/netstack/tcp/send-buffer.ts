/**
 * Bytes written by the application and not yet acknowledged, as a queue of the caller's
 * chunks (no copy on write). Offsets are relative to SND.UNA; the cursor remembers where the
 * last read ended, so sending a window in order walks the chunk list once.
 */
export class SendBuffer {
  private readonly chunks: Uint8Array[] = [];
  private head = 0; // index of the first live chunk
  private headOffset = 0; // bytes of chunks[head] already acknowledged
  /** Unacknowledged plus unsent bytes. */
  length = 0;
  private cursorChunk = 0;
  private cursorStart = 0; // buffer offset of chunks[cursorChunk]'s first live byte

  /** Appends a chunk; the buffer keeps a reference, so the caller must not reuse it. */
  push(chunk: Uint8Array): void {
    if (chunk.length === 0) return;
    this.chunks.push(chunk);
    this.length += chunk.length;
  }

  /** Drops `n` acknowledged bytes from the front. */
  consume(n: number): void {
    let left = Math.min(n, this.length);
    this.length -= left;
    while (left > 0) {
      const c = this.chunks[this.head]!;
      const avail = c.length - this.headOffset;
      if (left < avail) {
        this.headOffset += left;
        break;
      }
      left -= avail;
      this.chunks[this.head] = EMPTY;
      this.head++;
      this.headOffset = 0;
    }
    if (this.head > 64 && this.head * 2 > this.chunks.length) {
      this.chunks.splice(0, this.head);
      this.head = 0;
    }
    this.cursorChunk = this.head;
    this.cursorStart = 0;
  }

  /** Copies `len` bytes from buffer offset `offset` into `dst` at `dstOffset`. */
  copyOut(offset: number, len: number, dst: Uint8Array, dstOffset: number): void {
    let i = this.head;
    let start = 0;
    if (offset >= this.cursorStart && this.cursorChunk >= this.head) {
      i = this.cursorChunk;
      start = this.cursorStart;
    }
    let pos = offset;
    let d = dstOffset;
    let left = len;
    while (left > 0) {
      const c = this.chunks[i]!;
      const skip = i === this.head ? this.headOffset : 0;
      const size = c.length - skip;
      if (pos >= start + size) {
        start += size;
        i++;
        continue;
      }
      const from = skip + (pos - start);
      const n = Math.min(left, c.length - from);
      dst.set(n === c.length ? c : c.subarray(from, from + n), d);
      d += n;
      pos += n;
      left -= n;
      this.cursorChunk = i;
      this.cursorStart = start;
    }
  }

  /** Drops everything. */
  clear(): void {
    this.chunks.length = 0;
    this.head = 0;
    this.headOffset = 0;
    this.length = 0;
    this.cursorChunk = 0;
    this.cursorStart = 0;
  }
}

const EMPTY = new Uint8Array(0);
