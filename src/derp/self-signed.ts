/**
 * A self-signed TLS certificate for a DERP relay that has no name a CA would sign (an IP
 * address, a test host), as derper makes for an IP hostname (cmd/derper/cert.go
 * createSelfSignedIPCert): ECDSA P-256, a year's validity, the host as subject CN and
 * subjectAltName, serverAuth. Clients pin it by the DERP map's `CertName: "sha256-raw:<hex>"`,
 * the SHA-256 of the certificate's DER (derphttp tlsClient → tlsdial.SetConfigExpectedCertHash).
 */
import {
  createHash,
  createPrivateKey,
  generateKeyPairSync,
  randomBytes,
  sign,
  X509Certificate,
} from 'node:crypto';
import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import { isIP } from 'node:net';
import { join } from 'node:path';
import {
  bitString,
  booleanTrue,
  explicit,
  implicit,
  octetString,
  oid,
  sequence,
  set,
  time,
  unsignedInteger,
  utf8String,
} from './der.js';
import { DerpError } from './errors.js';
import { ipTo16 } from './messages.js';

/** A certificate with its key, in PEM, and the DERP map CertName that pins it. */
export interface PinnedCertificate {
  cert: string;
  key: string;
  /** `sha256-raw:<lowercase hex of SHA-256(DER)>`. */
  certName: string;
}

const ECDSA_WITH_SHA256 = '1.2.840.10045.4.3.2';
const COMMON_NAME = '2.5.4.3';
const KEY_USAGE = '2.5.29.15';
const EXT_KEY_USAGE = '2.5.29.37';
const BASIC_CONSTRAINTS = '2.5.29.19';
const SUBJECT_ALT_NAME = '2.5.29.17';
const SERVER_AUTH = '1.3.6.1.5.5.7.3.1';
const DAY_MS = 86_400_000;
/** derper: "expires in 1 year; a bit over that is rejected by macOS etc". */
const VALIDITY_MS = 365 * DAY_MS;
/** A stored certificate this close to expiry is replaced. */
const RENEW_BEFORE_MS = 30 * DAY_MS;

/** An IP SAN holds 4 bytes for IPv4, 16 for IPv6 (RFC 5280 §4.2.1.6). */
function ipBytes(ip: string): Buffer {
  const b = Buffer.from(ipTo16(ip));
  return isIP(ip) === 4 ? b.subarray(12) : b;
}

function extension(id: string, critical: boolean, value: Uint8Array): Buffer {
  return critical
    ? sequence(oid(id), booleanTrue(), octetString(value))
    : sequence(oid(id), octetString(value));
}

/** The CertName pinning a PEM or DER certificate. */
export function certNameOf(cert: string | Uint8Array): string {
  return `sha256-raw:${createHash('sha256').update(new X509Certificate(cert).raw).digest('hex')}`;
}

/**
 * Makes a new self-signed certificate for `host` (an IP address or a DNS name).
 *
 * @example
 * const { cert, key, certName } = createSelfSignedCertificate('127.0.0.1');
 */
export function createSelfSignedCertificate(host: string, now = new Date()): PinnedCertificate {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const name = sequence(set(sequence(oid(COMMON_NAME), utf8String(host))));
  const altName = isIP(host) ? implicit(7, ipBytes(host)) : implicit(2, Buffer.from(host, 'ascii'));
  const algorithm = sequence(oid(ECDSA_WITH_SHA256));
  const serial = randomBytes(16);
  serial[0]! &= 0x7f;
  const tbs = sequence(
    explicit(0, unsignedInteger(Buffer.from([2]))), // v3
    unsignedInteger(serial),
    algorithm,
    name,
    sequence(time(now), time(new Date(now.getTime() + VALIDITY_MS))),
    name,
    publicKey.export({ type: 'spki', format: 'der' }),
    explicit(
      3,
      sequence(
        extension(KEY_USAGE, true, bitString(Buffer.from([0x80]), 7)), // digitalSignature
        extension(EXT_KEY_USAGE, false, sequence(oid(SERVER_AUTH))),
        extension(BASIC_CONSTRAINTS, true, sequence()), // not a CA
        extension(SUBJECT_ALT_NAME, false, sequence(altName)),
      ),
    ),
  );
  const signature = sign('sha256', tbs, { key: privateKey, dsaEncoding: 'der' });
  const der = sequence(tbs, algorithm, bitString(signature));
  const cert = `-----BEGIN CERTIFICATE-----\n${der.toString('base64').replace(/.{64}/g, '$&\n').trimEnd()}\n-----END CERTIFICATE-----\n`;
  return {
    cert,
    key: privateKey.export({ type: 'pkcs8', format: 'pem' }) as string,
    certName: certNameOf(der),
  };
}

/** Whether a stored certificate and key still serve `host`: they match, cover it, and are not near expiry. */
function usable(cert: string, key: string, host: string, now: Date): boolean {
  try {
    const x = new X509Certificate(cert);
    if (!x.checkPrivateKey(createPrivateKey(key))) return false;
    if (new Date(x.validTo).getTime() - now.getTime() < RENEW_BEFORE_MS) return false;
    if (new Date(x.validFrom).getTime() > now.getTime()) return false;
    return isIP(host) ? x.checkIP(host) !== undefined : x.checkHost(host) !== undefined;
  } catch {
    // Unreadable or corrupt files are replaced, as missing ones are.
    return false;
  }
}

/**
 * The relay's certificate in `dir` (`derp-cert.pem`, `derp-key.pem`, both 0600): reused while it
 * fits `host` and is more than 30 days from expiry, else made anew. A stable certificate keeps the
 * pin in the DERP map stable across restarts.
 *
 * @example
 * const pinned = await loadOrCreateCertificate('/var/lib/ctl', '127.0.0.1');
 * DerpHttpServer.listen({ port: 0, tls: pinned });
 */
export async function loadOrCreateCertificate(
  dir: string,
  host: string,
  now = new Date(),
): Promise<PinnedCertificate> {
  const certPath = join(dir, 'derp-cert.pem');
  const keyPath = join(dir, 'derp-key.pem');
  const [cert, key] = await Promise.all([
    readFile(certPath, 'utf8').catch(() => ''),
    readFile(keyPath, 'utf8').catch(() => ''),
  ]);
  if (cert && key && usable(cert, key, host, now)) return { cert, key, certName: certNameOf(cert) };
  const made = createSelfSignedCertificate(host, now);
  try {
    await mkdir(dir, { recursive: true, mode: 0o700 });
    await writeFile(keyPath, made.key, { mode: 0o600 });
    await chmod(keyPath, 0o600);
    await writeFile(certPath, made.cert, { mode: 0o600 });
    await chmod(certPath, 0o600);
  } catch (err) {
    throw new DerpError(
      'BAD_CONFIG',
      `cannot store the relay certificate in ${dir}: ${(err as Error).message}`,
      {
        cause: err,
      },
    );
  }
  return made;
}
