import { inspect } from 'node:util';
import { describe, expect, it } from 'vitest';
import { KeyParseError, PrivateKey, PublicKey } from '../../src/control/keys.js';

describe('keys', () => {
  it('writes and parses the typed hex text forms', () => {
    const k = PrivateKey.generate('node');
    const text = k.publicKey.toString();
    expect(text).toMatch(/^nodekey:[0-9a-f]{64}$/);
    expect(PublicKey.parse('node', text).equals(k.publicKey)).toBe(true);
    expect(PrivateKey.generate('machine').publicKey.toString()).toMatch(/^mkey:/);
    expect(PrivateKey.generate('disco').publicKey.toString()).toMatch(/^discokey:/);
    expect(PrivateKey.parse('node', k.toStateText()).publicKey.equals(k.publicKey)).toBe(true);
  });

  it('refuses the wrong prefix, length or case', () => {
    const hex = 'ab'.repeat(32);
    expect(() => PublicKey.parse('node', `mkey:${hex}`)).toThrow(KeyParseError);
    expect(() => PublicKey.parse('node', `nodekey:${hex.slice(2)}`)).toThrow(KeyParseError);
    expect(() => PublicKey.parse('node', `nodekey:${hex.toUpperCase()}`)).toThrow(KeyParseError);
  });

  it('never prints private key material', () => {
    const k = PrivateKey.generate('machine');
    const secret = k.toStateText().slice('privkey:'.length);
    for (const s of [String(k), JSON.stringify({ k }), inspect(k), `${k}`]) expect(s).not.toContain(secret);
    let msg = '';
    try {
      PrivateKey.parse('node', `privkey:${secret.slice(1)}`);
    } catch (err) {
      msg = (err as Error).message;
    }
    expect(msg).not.toBe('');
    expect(msg).not.toContain(secret.slice(1, 20));
  });

  it('computes the same shared secret from both sides', () => {
    const a = PrivateKey.generate('machine');
    const b = PrivateKey.generate('machine');
    expect(Buffer.from(a.sharedSecret(b.publicKey))).toEqual(Buffer.from(b.sharedSecret(a.publicKey)));
  });
});
