// The HTTPS latency check toward a DERP node is verified as the DERP connection is (dial.ts): a
// sha256-raw pin, a CertName to verify against, or the URL's host; only InsecureForTests skips it.
import { once } from 'node:events';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DerpNode } from '../../src/derp/derpmap.js';
import { httpLatency } from '../../src/derp/latency.js';
import { createSelfSignedCertificate } from '../../src/derp/self-signed.js';

const cert = createSelfSignedCertificate('127.0.0.1');
let server: https.Server;
let port = 0;
let checks = 0;

beforeAll(async () => {
  server = https.createServer({ cert: cert.cert, key: cert.key }, (req, res) => {
    if (req.url === '/derp/latency-check') checks++;
    res.end();
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  port = (server.address() as AddressInfo).port;
});
afterAll(() => new Promise<void>((r) => server.close(() => r())));

const node = (more: Partial<DerpNode>): DerpNode => ({
  Name: '1a',
  RegionID: 1,
  HostName: '127.0.0.1',
  IPv4: '127.0.0.1',
  DERPPort: port,
  ...more,
});

describe('httpLatency over HTTPS', () => {
  it('measures a node whose certificate matches its sha256-raw pin', async () => {
    const before = checks;
    const ms = await httpLatency(node({ CertName: cert.certName }), { timeoutMs: 5000 });
    expect(ms).toBeGreaterThan(0);
    expect(checks).toBe(before + 1);
  });

  it('refuses a certificate that does not match the pin, or that no CA vouches for', async () => {
    const other = createSelfSignedCertificate('127.0.0.1');
    await expect(httpLatency(node({ CertName: other.certName }), { timeoutMs: 5000 })).rejects.toThrow(
      /does not match the pinned sha256-raw hash/,
    );
    await expect(httpLatency(node({ CertName: 'relay.example' }), { timeoutMs: 5000 })).rejects.toThrow(
      /self[- ]signed|unable to verify|altnames|certificate/i,
    );
    await expect(httpLatency(node({}), { timeoutMs: 5000 })).rejects.toThrow(/self[- ]signed|certificate/i);
  });

  it('skips the check only for InsecureForTests', async () => {
    expect(await httpLatency(node({ InsecureForTests: true }), { timeoutMs: 5000 })).toBeGreaterThan(0);
  });
});
