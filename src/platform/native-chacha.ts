/**
 * Whether this runtime's node:crypto really does ChaCha20-Poly1305. Asking `getCiphers()` is
 * not enough: a runtime may list a cipher it cannot run, or run one it does not list (Bun 1.4
 * has none; Deno and Node have it). So one seal of RFC 8439 §2.8.2's test vector is tried at
 * load and compared with the RFC's tag; engines that find it missing use WASM or noble.
 */
import * as nodeCrypto from 'node:crypto';

// RFC 8439 §2.8.2: key 80..9f, nonce 07000000 40..47, AAD 50515253c0c1c2c3c4c5c6c7.
const KEY = Uint8Array.from({ length: 32 }, (_, i) => 0x80 + i);
const NONCE = Uint8Array.of(7, 0, 0, 0, 0x40, 0x41, 0x42, 0x43, 0x44, 0x45, 0x46, 0x47);
const AAD = Uint8Array.of(0x50, 0x51, 0x52, 0x53, 0xc0, 0xc1, 0xc2, 0xc3, 0xc4, 0xc5, 0xc6, 0xc7);
const PLAINTEXT =
  "Ladies and Gentlemen of the class of '99: If I could offer you only one tip for the future, sunscreen would be it.";
const TAG = '1ae10b594f09e26a7e902ecbd0600691';

function probe(): boolean {
  try {
    const text = new TextEncoder().encode(PLAINTEXT);
    const c = nodeCrypto.createCipheriv('chacha20-poly1305', KEY, NONCE, { authTagLength: 16 });
    c.setAAD(AAD, { plaintextLength: text.length });
    c.update(text);
    c.final();
    return Buffer.from(c.getAuthTag()).toString('hex') === TAG;
  } catch (err) {
    // The only expected failure is the runtime refusing the cipher; anything else is a bug to see.
    if (err instanceof Error && /cipher|not supported|unsupported/i.test(err.message)) return false;
    throw err;
  }
}

/** True when node:crypto's chacha20-poly1305 exists here and gives RFC 8439's answer. */
export const nativeChaCha20Poly1305: boolean = probe();
