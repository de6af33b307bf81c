// The real derpprobe (-once) against our DERP server over TLS, with a DERP map file pointing at it: the map,
// TLS certificate, STUN (udp), single-node mesh and 2 MB bandwidth probes must all report good. derpprobe's
// mesh probe logs in as a prober and insists on TLS; its TLS probe verifies against the system roots, which
// SSL_CERT_FILE replaces with our test certificate. The node's HostName must be a DNS name: derpprobe
// compares the TLS ServerName (the SNI it sent, empty for an IP literal) with HostName, so an IP HostName
// fails its mesh probe against any server, derper included.
import { createHash, X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { networkInterfaces, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, expect, it } from 'vitest';
import { DerpClient } from '../../src/derp/client.js';
import { DerpHttpServer } from '../../src/derp/http-server.js';
import { generateNodeKeyPair } from '../../src/derp/keys.js';
import { startLocalTailnet } from '../../src/tailnet/local.js';
import { numbered, relayChecked } from '../derp/helpers.js';
import { DERPPROBE, freePort, missingBinaries } from './derp-rig.js';
import { Cleanup, exec } from './rig/exec.js';
import { checkRequirements, skipUnless } from './rig/requirements.js';

const missing = [...missingBinaries([DERPPROBE]), ...checkRequirements(['openssl'])];
/** Whether this machine has ::1 (then our relays answer there too, and derpprobe's udp6 probe runs). */
const HAVE_V6_LOOPBACK = Object.values(networkInterfaces()).some((list) =>
  list?.some((a) => a.family === 'IPv6' && a.address === '::1'),
);
let cleanup = new Cleanup();
afterEach(async () => {
  const errors = await cleanup.run();
  cleanup = new Cleanup();
  expect(errors.map((e) => e.message)).toEqual([]);
});

/**
 * A self-signed ECDSA certificate for localhost and 127.0.0.1, like the one derper's -certmode manual makes
 * for an IP.
 */
async function makeCert(
  dir: string,
): Promise<{ cert: string; key: string; certFile: string; certName: string }> {
  const certFile = join(dir, 'cert.pem');
  const keyFile = join(dir, 'key.pem');
  await exec('openssl', [
    'req',
    '-x509',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:prime256v1',
    '-nodes',
    '-days',
    '30',
    '-subj',
    '/CN=localhost',
    '-addext',
    'subjectAltName=DNS:localhost,IP:127.0.0.1',
    '-keyout',
    keyFile,
    '-out',
    certFile,
  ]);
  const cert = readFileSync(certFile, 'utf8');
  const raw = new X509Certificate(cert).raw;
  return {
    cert,
    key: readFileSync(keyFile, 'utf8'),
    certFile,
    certName: `sha256-raw:${createHash('sha256').update(raw).digest('hex')}`,
  };
}

skipUnless(missing)('our DERP server over TLS: real derpprobe and our clients', () => {
  it('derpprobe -once reports every probe good', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'qs-derpprobe-'));
    cleanup.add(`rm ${dir}`, () => rmSync(dir, { recursive: true, force: true }));
    const tls = await makeCert(dir);
    const srv = await DerpHttpServer.listen({
      port: 0,
      stunPort: await freePort(),
      tls: { cert: tls.cert, key: tls.key },
    });
    cleanup.add('close our server', () => srv.close());
    const map = {
      Regions: {
        '900': {
          RegionID: 900,
          RegionCode: 'qs',
          RegionName: 'quackscale loopback',
          Nodes: [
            {
              Name: '900a',
              RegionID: 900,
              HostName: 'localhost',
              IPv4: '127.0.0.1',
              // STUN answers on ::1 too (a relay on 127.0.0.1 binds both loopbacks): the udp6 probe.
              ...(HAVE_V6_LOOPBACK ? { IPv6: '::1' } : {}),
              DERPPort: srv.port,
              STUNPort: srv.stun!.port,
              CertName: tls.certName,
            },
          ],
        },
      },
    };
    const mapFile = join(dir, 'derpmap.json');
    writeFileSync(mapFile, JSON.stringify(map));
    const args = [
      '-derp-map',
      `file://${mapFile}`,
      '-once',
      '-spread=false',
      '-bw-interval',
      '1s',
      '-bw-probe-size-bytes',
      '2000000',
    ];
    const r = await exec(DERPPROBE, args, {
      timeoutMs: 60_000,
      check: false,
      env: { SSL_CERT_FILE: tls.certFile },
    });
    const out = r.stdout + r.stderr;
    const good = out.split('\n').filter((l) => l.includes('good: '));
    const bad = out.split('\n').filter((l) => l.includes('bad: '));
    expect(bad, out).toEqual([]);
    expect(r.code, out).toBe(0);
    const probes = [
      'derpmap-probe',
      'derp/qs/900a/tls',
      'derp/qs/900a/udp',
      ...(HAVE_V6_LOOPBACK ? ['derp/qs/900a/udp6'] : []),
      'derp/qs/900a/900a/mesh',
      'derp/qs/900a/900a/bw',
    ];
    for (const probe of probes) {
      expect(
        good.some((l) => l.includes(`good: ${probe}:`)),
        `${probe} in\n${out}`,
      ).toBe(true);
    }
    expect(srv.stun!.answered).toBeGreaterThan(0);
    // The bandwidth probe pushed 2 MB through us in MaxPacketSize packets, each compared byte for byte by
    // derpprobe.
    expect(srv.derp.metrics.bytesSent).toBeGreaterThanOrEqual(2_000_000);
  });

  it('our client over TLS (pinned) and WebSocket-over-TLS relays through our TLS server', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'qs-derptls-'));
    cleanup.add(`rm ${dir}`, () => rmSync(dir, { recursive: true, force: true }));
    const tls = await makeCert(dir);
    const srv = await DerpHttpServer.listen({ port: 0, tls: { cert: tls.cert, key: tls.key } });
    cleanup.add('close our server', () => srv.close());
    for (const websocket of [false, true]) {
      const opts = { url: srv.url, websocket, tls: { certName: tls.certName } };
      const a = await DerpClient.connect({ ...opts, privateKey: generateNodeKeyPair().privateKey });
      const b = await DerpClient.connect({ ...opts, privateKey: generateNodeKeyPair().privateKey });
      cleanup.add('close clients', () => {
        a.close();
        b.close();
      });
      await relayChecked(a, b, [numbered(0, 1400), numbered(1, 65536), numbered(2, 20)]);
    }
    await expect(
      DerpClient.connect({ url: srv.url, privateKey: generateNodeKeyPair().privateKey }),
    ).rejects.toMatchObject({ code: 'CONNECT' });
  });

  it('derpprobe against the embedded relay: Go honours the sha256-raw pin of our certificate; udp and udp6 STUN', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'qs-derpprobe-local-'));
    cleanup.add(`rm ${dir}`, () => rmSync(dir, { recursive: true, force: true }));
    const local = await startLocalTailnet({ stateDir: dir });
    cleanup.add('close the local tailnet', () => local.close());
    const node = local.derpMap.Regions['900']!.Nodes[0]!;
    expect(node.CertName).toMatch(/^sha256-raw:[0-9a-f]{64}$/);
    expect(node.IPv6).toBe(HAVE_V6_LOOPBACK ? '::1' : 'none');
    const mapFile = join(dir, 'derpmap.json');
    writeFileSync(mapFile, JSON.stringify(local.derpMap));
    // Its TLS probe checks against the system roots and its mesh probe wants a DNS HostName (see the
    // top of this file), so those two stay off; the bandwidth probe dials through derphttp, which
    // verifies our self-signed certificate by the pin alone, and no SSL_CERT_FILE helps it.
    const r = await exec(
      DERPPROBE,
      [
        '-derp-map',
        `file://${mapFile}`,
        '-once',
        '-spread=false',
        '-tls-interval=0',
        '-mesh-interval=0',
        '-bw-interval',
        '1s',
        '-bw-probe-size-bytes',
        '1000000',
      ],
      { timeoutMs: 60_000, check: false },
    );
    const out = r.stdout + r.stderr;
    const good = out.split('\n').filter((l) => l.includes('good: '));
    expect(
      out.split('\n').filter((l) => l.includes('bad: ')),
      out,
    ).toEqual([]);
    expect(r.code, out).toBe(0);
    const probes = [
      'derpmap-probe',
      'derp/local/900a/udp',
      ...(HAVE_V6_LOOPBACK ? ['derp/local/900a/udp6'] : []),
      'derp/local/900a/900a/bw',
    ];
    for (const probe of probes)
      expect(
        good.some((l) => l.includes(`good: ${probe}:`)),
        `${probe} in\n${out}`,
      ).toBe(true);
  });
});
