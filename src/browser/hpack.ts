/**
 * HPACK (RFC 7541) for our HTTP/2 client: a full decoder (static and dynamic tables, Huffman)
 * and an encoder that writes every field as a literal without indexing and without Huffman
 * (§6.2.2), which any decoder accepts and which keeps no state to get wrong.
 */

/** The static table (RFC 7541 Appendix A), 1-based: `name` or `name=value`. */
const STATIC: readonly (readonly [string, string])[] = [
  ':authority',
  ':method=GET',
  ':method=POST',
  ':path=/',
  ':path=/index.html',
  ':scheme=http',
  ':scheme=https',
  ':status=200',
  ':status=204',
  ':status=206',
  ':status=304',
  ':status=400',
  ':status=404',
  ':status=500',
  'accept-charset',
  'accept-encoding=gzip, deflate',
  'accept-language',
  'accept-ranges',
  'accept',
  'access-control-allow-origin',
  'age',
  'allow',
  'authorization',
  'cache-control',
  'content-disposition',
  'content-encoding',
  'content-language',
  'content-length',
  'content-location',
  'content-range',
  'content-type',
  'cookie',
  'date',
  'etag',
  'expect',
  'expires',
  'from',
  'host',
  'if-match',
  'if-modified-since',
  'if-none-match',
  'if-range',
  'if-unmodified-since',
  'last-modified',
  'link',
  'location',
  'max-forwards',
  'proxy-authenticate',
  'proxy-authorization',
  'range',
  'referer',
  'refresh',
  'retry-after',
  'server',
  'set-cookie',
  'strict-transport-security',
  'transfer-encoding',
  'user-agent',
  'vary',
  'via',
  'www-authenticate',
].map((e) => {
  const eq = e.indexOf('=', 1);
  return eq < 0 ? ([e, ''] as const) : ([e.slice(0, eq), e.slice(eq + 1)] as const);
});

/**
 * Code lengths of the Huffman code (RFC 7541 Appendix B) for symbols 0..256 (256 is EOS), one
 * letter each: 'A' is 5 bits, 'Z' 30. The code is canonical, so lengths are all it takes.
 */
const HUFFMAN_LENGTHS =
  'ISXXXXXXXTZXXZXXXXXXXXZXXXXXXXXXBFFHIBDGFFDGDBBBAAABBBBBBBCDKBHFIBCCCCCCCCCCCCCCCCCCCCCCDCDIOIJB' +
  'KABABABBBACCBBBABCBAABCCCCCKGJIXPRPPRRRSRSSSSSTSTTRSTSSSSQRSRSSTRQPRRSSQSRRTQRSSQQRQSRSSPRRRSRRS' +
  'VVPORSRUVVVWWVTUOQVWWVWTQQVVXWWWPTPQRQQSRRUUTTVSVWVVWWWWWXWWWWWVZ';

interface HuffNode {
  sym: number;
  zero?: HuffNode;
  one?: HuffNode;
}

/** The decoding tree, built once from the canonical code (shortest codes first, then by symbol). */
const HUFFMAN_ROOT: HuffNode = (() => {
  const lens = [...HUFFMAN_LENGTHS].map((c) => c.charCodeAt(0) - 65 + 5);
  const order = lens.map((_, s) => s).sort((a, b) => lens[a]! - lens[b]! || a - b);
  const root: HuffNode = { sym: -1 };
  let code = 0;
  let prevLen = lens[order[0]!]!;
  for (const sym of order) {
    code <<= lens[sym]! - prevLen;
    prevLen = lens[sym]!;
    let node = root;
    for (let bit = prevLen - 1; bit >= 0; bit--) {
      const key = (code >>> bit) & 1 ? 'one' : 'zero';
      node = node[key] ??= { sym: -1 };
    }
    node.sym = sym;
    code++;
  }
  return root;
})();

/** A header block that does not decode (a COMPRESSION_ERROR, RFC 9113 §4.3). */
export class HpackError extends Error {
  constructor(message: string) {
    super(`HPACK: ${message}`);
    this.name = 'HpackError';
  }
}

function huffmanDecode(bytes: Uint8Array): string {
  let out = '';
  let node = HUFFMAN_ROOT;
  let depth = 0;
  let ones = true; // padding must be a prefix of EOS: all ones, at most 7 bits (§5.2)
  for (const byte of bytes) {
    for (let bit = 7; bit >= 0; bit--) {
      const one = (byte >>> bit) & 1;
      const next = one ? node.one : node.zero;
      if (!next) throw new HpackError('invalid Huffman code');
      depth++;
      ones &&= one === 1;
      if (next.sym >= 0) {
        if (next.sym === 256) throw new HpackError('EOS in a Huffman string');
        out += String.fromCharCode(next.sym);
        node = HUFFMAN_ROOT;
        depth = 0;
        ones = true;
      } else {
        node = next;
      }
    }
  }
  if (depth > 7 || !ones) throw new HpackError('bad Huffman padding');
  return out;
}

const latin1 = new TextDecoder('latin1');

/** Decodes header blocks of one connection (the dynamic table lives across blocks). */
export class HpackDecoder {
  private dynamic: [string, string][] = [];
  private size = 0;
  private maxSize: number;

  constructor(private readonly limit = 4096) {
    this.maxSize = limit;
  }

  /** The fields of one complete header block, in order. */
  decode(block: Uint8Array): [string, string][] {
    const fields: [string, string][] = [];
    let i = 0;
    const int = (prefixBits: number): number => {
      const mask = (1 << prefixBits) - 1;
      let v = block[i++]! & mask;
      if (v < mask) return v;
      let shift = 0;
      for (;;) {
        if (i >= block.length) throw new HpackError('truncated integer');
        const b = block[i++]!;
        v += (b & 0x7f) * 2 ** shift;
        shift += 7;
        if ((b & 0x80) === 0) break;
        if (shift > 28) throw new HpackError('integer too large');
      }
      return v;
    };
    const str = (): string => {
      if (i >= block.length) throw new HpackError('truncated string');
      const huffman = (block[i]! & 0x80) !== 0;
      const len = int(7);
      if (i + len > block.length) throw new HpackError('truncated string');
      const raw = block.subarray(i, i + len);
      i += len;
      return huffman ? huffmanDecode(raw) : latin1.decode(raw);
    };
    while (i < block.length) {
      const b = block[i]!;
      if (b & 0x80) {
        fields.push(this.entry(int(7)));
      } else if (b & 0x40) {
        const idx = int(6);
        const name = idx === 0 ? str() : this.entry(idx)[0];
        const field: [string, string] = [name, str()];
        fields.push(field);
        this.insert(field);
      } else if (b & 0x20) {
        const size = int(5);
        if (size > this.limit) throw new HpackError(`table size ${size} over the limit ${this.limit}`);
        this.maxSize = size;
        this.evict();
      } else {
        const idx = int(4); // without indexing (0000) or never indexed (0001)
        const name = idx === 0 ? str() : this.entry(idx)[0];
        fields.push([name, str()]);
      }
    }
    return fields;
  }

  private entry(idx: number): [string, string] {
    if (idx >= 1 && idx <= STATIC.length) return [...STATIC[idx - 1]!] as [string, string];
    const e = this.dynamic[idx - STATIC.length - 1];
    if (!e) throw new HpackError(`index ${idx} out of range`);
    return e;
  }

  private insert(field: [string, string]): void {
    this.dynamic.unshift(field);
    this.size += field[0].length + field[1].length + 32;
    this.evict();
  }

  private evict(): void {
    while (this.size > this.maxSize) {
      const e = this.dynamic.pop()!;
      this.size -= e[0].length + e[1].length + 32;
    }
  }
}

const utf8 = new TextEncoder();

/** A header block of literal fields without indexing (§6.2.2), names lower-case as HTTP/2 requires. */
export function encodeHeaders(fields: readonly (readonly [string, string])[]): Uint8Array {
  const out: number[] = [];
  const int = (v: number, prefixBits: number, first: number): void => {
    const max = (1 << prefixBits) - 1;
    if (v < max) {
      out.push(first | v);
      return;
    }
    out.push(first | max);
    v -= max;
    while (v >= 128) {
      out.push((v % 128) + 128);
      v = Math.floor(v / 128);
    }
    out.push(v);
  };
  const str = (s: string): void => {
    const b = utf8.encode(s);
    int(b.length, 7, 0);
    for (const x of b) out.push(x);
  };
  for (const [name, value] of fields) {
    out.push(0);
    str(name.toLowerCase());
    str(value);
  }
  return Uint8Array.from(out);
}
