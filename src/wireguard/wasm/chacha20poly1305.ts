/**
 * Loader for the WebAssembly ChaCha20-Poly1305 (RFC 8439) assembled from chacha20poly1305.wat.
 * The module works in place on its own linear memory: the caller copies the key to
 * `KEY_OFFSET` and a message to `BUF_OFFSET` or above, calls an export, and copies the result
 * out. One instance per engine, so each has private scratch memory; not reentrant.
 */
import { CHACHA20POLY1305_WASM_BASE64 } from './chacha20poly1305.wasm.js';

/** Where the 32-byte key goes (RFC 8439 §2.3; for the bare `poly1305`, the one-time key r || s). */
export const KEY_OFFSET = 0;
/** Where the computed Poly1305 tag of the bare `poly1305` export is written (RFC 8439 §2.5). */
export const TAG_OFFSET = 64;
/** Start of the message area. */
export const BUF_OFFSET = 1024;
/** Bytes available from `BUF_OFFSET` for one message (enough for a 65535-byte datagram). */
export const BUF_CAPACITY = 2 * 65536 - BUF_OFFSET;
/**
 * Where batches live (`seal_batch`, `open_batch`): each vector has its own region, laid out by
 * wasm-vector.ts, so a vector being filled survives the other's calls. The module's memory is
 * fixed at twelve 64 KiB pages: it never grows, so views of it never detach.
 */
export const BATCH_REGIONS = {
  seal: { descriptors: 131072, keys: 135168, data: 196608, dataEnd: 458752 },
  open: { descriptors: 139264, keys: 143360, data: 458752, dataEnd: 720896 },
} as const;
/** Bytes of one batch descriptor (chacha20poly1305.wat, "Batch descriptors"). */
export const DESCRIPTOR_SIZE = 32;

/** The exports of chacha20poly1305.wat; offsets and lengths are bytes, nonce words little-endian. */
export interface ChaCha20Poly1305Exports {
  readonly memory: { readonly buffer: ArrayBuffer };
  /** AEAD seal (RFC 8439 §2.8): encrypts p[0..len) in place, authenticating aad[0..aadLen); tag at p + len. */
  seal(aad: number, aadLen: number, p: number, len: number, n0: number, n1: number, n2: number): void;
  /** AEAD open (RFC 8439 §2.8): 1 and p[0..len) decrypted in place if the tag at p + len is valid, else 0. */
  open(aad: number, aadLen: number, p: number, len: number, n0: number, n1: number, n2: number): number;
  /** Bare ChaCha20 (RFC 8439 §2.4): XORs p[0..len) with the keystream from block `counter`. */
  chacha20(p: number, len: number, counter: number, n0: number, n1: number, n2: number): void;
  /** Bare Poly1305 (RFC 8439 §2.5) of p[0..len) under the one-time key at KEY_OFFSET; tag at TAG_OFFSET. */
  poly1305(p: number, len: number): void;
  /** The one's complement sum (RFC 1071) of p[0..len), folded to 16 bits. */
  checksum(p: number, len: number): number;
  /** Seals the `n` messages described at `d`, with transmit checksum offload where asked. */
  seal_batch(d: number, n: number): void;
  /** Opens the `n` messages described at `d`; results and plaintext sums go to the descriptors. */
  open_batch(d: number, n: number): void;
}

/** A fresh instance: its exports and a byte view of its (never growing) memory. */
export interface ChaCha20Poly1305Instance {
  readonly exports: ChaCha20Poly1305Exports;
  readonly memory: Uint8Array;
}

// The WebAssembly global, typed here because lib.dom is not in this project's libs.
interface WebAssemblyApi {
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object, imports: object) => { readonly exports: object };
}

let compiled: object | null | undefined;

function compile(): object | null {
  if (compiled !== undefined) return compiled;
  const api = (globalThis as unknown as { WebAssembly?: WebAssemblyApi }).WebAssembly;
  try {
    // Synchronous compilation is fine in Node for a module of a few KiB, and runs once.
    compiled = api ? new api.Module(Buffer.from(CHACHA20POLY1305_WASM_BASE64, 'base64')) : null;
  } catch {
    compiled = null; // no WebAssembly SIMD (or no WebAssembly) here
  }
  return compiled;
}

/** True when this runtime can run the module (WebAssembly with 128-bit SIMD). */
export function wasmAvailable(): boolean {
  return compile() !== null;
}

/** A new instance of the module, or undefined where WebAssembly SIMD is unavailable. */
export function instantiateChaCha20Poly1305(): ChaCha20Poly1305Instance | undefined {
  const module = compile();
  if (!module) return undefined;
  const api = (globalThis as unknown as { WebAssembly: WebAssemblyApi }).WebAssembly;
  const exports = new api.Instance(module, {}).exports as ChaCha20Poly1305Exports;
  return { exports, memory: new Uint8Array(exports.memory.buffer) };
}
