// The runtime matrix (scripts/test-runtimes.sh) sets QS_RUNTIME to the runtime it launched: this proves the
// suite really ran there (vitest's workers inherit the runtime that started it), not under the host's Node.
import { expect, it } from 'vitest';
import { nativeChaCha20Poly1305 } from '../../src/platform/native-chacha.js';
import { runtime } from '../../src/platform/runtime.js';

const expected = process.env.QS_RUNTIME;

it.runIf(expected !== undefined)('runs in the runtime the matrix launched', () => {
  expect(`${runtime.name} ${runtime.version}`).toBe(expected);
});

it('knows whether node:crypto runs ChaCha20-Poly1305 (Bun 1.4 does not)', () => {
  expect(nativeChaCha20Poly1305).toBe(runtime.name !== 'bun');
});
