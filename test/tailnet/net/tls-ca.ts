// A certificate authority made by the test with openssl: a CA certificate and a server
// certificate it signed for the given DNS names and IPs, so that clients verify a chain
// (not a pin, not rejectUnauthorized: false) as they would against a real server.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface TestCA {
  /** The CA certificate, PEM: what clients pass as `ca`. */
  ca: string;
  /** The server's certificate and key, PEM. */
  cert: string;
  key: string;
}

/** A CA and a server certificate for `names` (DNS names or IP addresses) in its subjectAltName. */
export function makeTestCA(names: string[]): TestCA {
  const dir = mkdtempSync(join(tmpdir(), 'qs-ca-'));
  const f = (n: string) => join(dir, n);
  const openssl = (...args: string[]) => execFileSync('openssl', args, { stdio: 'pipe' });
  try {
    openssl(
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:P-256',
      '-nodes',
      '-days',
      '2',
      '-subj',
      '/CN=quackscale test CA',
      '-keyout',
      f('ca.key'),
      '-out',
      f('ca.pem'),
    );
    openssl(
      'req',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:P-256',
      '-nodes',
      '-subj',
      `/CN=${names[0]}`,
      '-keyout',
      f('server.key'),
      '-out',
      f('server.csr'),
    );
    const san = names.map((n) => (/^[\d.]+$|:/.test(n) ? `IP:${n}` : `DNS:${n}`)).join(',');
    writeFileSync(f('ext.cnf'), `subjectAltName=${san}\nextendedKeyUsage=serverAuth\n`);
    openssl(
      'x509',
      '-req',
      '-in',
      f('server.csr'),
      '-CA',
      f('ca.pem'),
      '-CAkey',
      f('ca.key'),
      '-CAcreateserial',
      '-days',
      '2',
      '-extfile',
      f('ext.cnf'),
      '-out',
      f('server.pem'),
    );
    return {
      ca: readFileSync(f('ca.pem'), 'utf8'),
      cert: readFileSync(f('server.pem'), 'utf8'),
      key: readFileSync(f('server.key'), 'utf8'),
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
