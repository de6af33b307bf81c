// The embedded relay's self-signed certificate (made like derper's for an IP host) and the
// sha256-raw pin, checked as tailscaled's tlsdial.SetConfigExpectedCertHash checks it.
import { createHash, X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { DerpHttpServer } from '../../src/derp/http-server.js';
import { createSelfSignedCertificate, loadOrCreateCertificate } from '../../src/derp/self-signed.js';
import { connect, numbered, relayChecked, startServer } from './helpers.js';

const YEAR_MS = 365 * 86_400_000;
const servers: DerpHttpServer[] = [];
const dirs: string[] = [];
afterEach(async () => {
  for (const s of servers.splice(0)) await s.close();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});
const tmp = () => {
  const d = mkdtempSync(join(tmpdir(), 'qs-cert-'));
  dirs.push(d);
  return d;
};

describe('self-signed relay certificate', () => {
  it.each([
    ['127.0.0.1', 'IP Address:127.0.0.1'],
    ['::1', /^IP Address:(0:0:0:0:0:0:0:1|::1)$/],
    ['relay.example', 'DNS:relay.example'],
  ])('for %s: a valid X.509 v3 server certificate, pinned by the SHA-256 of its DER', (host, san) => {
    const now = new Date();
    const c = createSelfSignedCertificate(host, now);
    const x = new X509Certificate(c.cert);
    expect(x.subject).toBe(`CN=${host}`);
    expect(x.issuer).toBe(x.subject);
    expect(x.subjectAltName).toMatch(san);
    expect(x.verify(x.publicKey)).toBe(true); // self-signed, signature correct
    expect(x.ca).toBe(false);
    // Node lists the extended key usages here (serverAuth); Deno lists the key usage instead.
    expect(x.keyUsage).toEqual(process.versions.deno ? ['DigitalSignature'] : ['1.3.6.1.5.5.7.3.1']);
    expect(x.publicKey.asymmetricKeyDetails?.namedCurve).toBe('prime256v1');
    expect(Date.parse(x.validTo) - Date.parse(x.validFrom)).toBe(YEAR_MS);
    expect(c.certName).toBe(`sha256-raw:${createHash('sha256').update(x.raw).digest('hex')}`);
    expect(c.key).toMatch(/^-----BEGIN PRIVATE KEY-----/);
  });

  it('is stored 0600 in the state dir and reused while it fits, replaced when it does not', async () => {
    const dir = tmp();
    const first = await loadOrCreateCertificate(dir, '127.0.0.1');
    for (const f of ['derp-cert.pem', 'derp-key.pem'])
      expect(statSync(join(dir, f)).mode & 0o777).toBe(0o600);
    expect((await loadOrCreateCertificate(dir, '127.0.0.1')).certName).toBe(first.certName);
    // Another host, a month before expiry, or a corrupt key: a new certificate.
    const other = await loadOrCreateCertificate(dir, '10.1.2.3');
    expect(other.certName).not.toBe(first.certName);
    const late = await loadOrCreateCertificate(
      dir,
      '10.1.2.3',
      new Date(Date.now() + YEAR_MS - 10 * 86_400_000),
    );
    expect(late.certName).not.toBe(other.certName);
    writeFileSync(join(dir, 'derp-key.pem'), 'garbage');
    const fresh = await loadOrCreateCertificate(dir, '10.1.2.3');
    expect(fresh.certName).not.toBe(late.certName);
    expect(readFileSync(join(dir, 'derp-key.pem'), 'utf8')).toBe(fresh.key);
  });
});

describe('the sha256-raw pin', () => {
  async function tlsServer(host: string, now?: Date, acceptPlainHttp = false) {
    const c = createSelfSignedCertificate(host, now);
    const srv = await startServer({ tls: c, acceptPlainHttp });
    servers.push(srv);
    return { srv, c, port: srv.port };
  }
  const refused = (url: string, certName: string) =>
    connect(url, { tls: { certName }, timeoutMs: 5000 }).then(
      (c) => {
        c.close();
        return 'connected';
      },
      (err: Error) => err.message,
    );

  it('relays over TLS and WebSocket-over-TLS with the right pin; refuses a wrong one, and one in capitals (as Go)', async () => {
    const { c, port } = await tlsServer('127.0.0.1');
    // Bun's WebSocket upgrade shows no TLS connection, so a pinned wss:// dial is refused there.
    const wss = process.versions.bun ? [] : [`wss://127.0.0.1:${port}/derp`];
    for (const url of [`https://127.0.0.1:${port}/derp`, ...wss]) {
      const a = await connect(url, { tls: { certName: c.certName } });
      const b = await connect(url, { tls: { certName: c.certName } });
      await relayChecked(a, b, [numbered(0, 1400), numbered(1, 64 * 1024)]);
      a.close();
      b.close();
    }
    const url = `https://127.0.0.1:${port}/derp`;
    expect(await refused(url, `sha256-raw:${'0'.repeat(64)}`)).toMatch(/does not match the pinned/);
    expect(await refused(url, c.certName.toUpperCase().replace('SHA256-RAW', 'sha256-raw'))).toMatch(
      /does not match the pinned/,
    );
    expect(await refused(url, '')).toMatch(/self-signed certificate|unable to verify/);
  });

  it('checks the server name when it is a DNS name, and the validity period', async () => {
    const named = await tlsServer('relay.example');
    expect(await refused(`https://localhost:${named.port}/derp`, named.c.certName)).toMatch(
      /does not match server name localhost/,
    );
    const good = await tlsServer('localhost');
    expect(await refused(`https://localhost:${good.port}/derp`, good.c.certName)).toBe('connected');
    const old = await tlsServer('127.0.0.1', new Date(Date.now() - 2 * YEAR_MS));
    expect(await refused(`https://127.0.0.1:${old.port}/derp`, old.c.certName)).toMatch(/expired/);
    const future = await tlsServer('127.0.0.1', new Date(Date.now() + 86_400_000));
    expect(await refused(`https://127.0.0.1:${future.port}/derp`, future.c.certName)).toMatch(
      /not valid until/,
    );
  });

  // Bun's and Deno's node:http servers cannot be handed a connection, which the sniffing needs.
  const handsOver = !process.versions.bun && !process.versions.deno;
  it.skipIf(!handsOver)(
    'a TLS relay that accepts plain HTTP too relays between a TLS and an HTTP client',
    async () => {
      const { c, port } = await tlsServer('127.0.0.1', undefined, true);
      const a = await connect(`https://127.0.0.1:${port}/derp`, { tls: { certName: c.certName } });
      const b = await connect(`http://127.0.0.1:${port}/derp`);
      await relayChecked(a, b, [numbered(0, 1400), numbered(1, 64 * 1024), numbered(2, 4)]);
      a.close();
      b.close();
      const strict = await tlsServer('127.0.0.1');
      expect(await refused(`http://127.0.0.1:${strict.port}/derp`, '')).toMatch(/DERP dial/);
    },
  );
});
