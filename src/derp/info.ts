/**
 * The JSON inside the login boxes: ClientInfo (derp_client.go) and ServerInfo (derp.go), with
 * Go's field names and omitempty on the way out and Go's case-insensitive matching on the way in.
 */
import { DerpError } from './errors.js';

/** What a client tells the server about itself (derp_client.go ClientInfo). */
export interface ClientInfo {
  version: number;
  canAckPings: boolean;
  isProber?: boolean;
  appName?: string;
  /** 64 hex digits; only trusted mesh peers send it. */
  meshKey?: string;
}

/** What the server tells the client (derp.go ServerInfo). */
export interface ServerInfo {
  version: number;
  tokenBucketBytesPerSecond?: number;
  tokenBucketBytesBurst?: number;
}

const json = { enc: new TextEncoder(), dec: new TextDecoder('utf-8', { fatal: true }) };

/**
 * ClientInfo JSON as Go's encoding/json writes it: field names and omitempty as derp_client.go.
 *
 * @example
 * clientInfoJson({ version: 2, canAckPings: true });   // {"version":2,"CanAckPings":true}
 */
export function clientInfoJson(info: ClientInfo): Uint8Array {
  const o: Record<string, unknown> = {};
  if (info.meshKey) o.meshKey = info.meshKey;
  if (info.version) o.version = info.version;
  o.CanAckPings = info.canAckPings;
  if (info.isProber) o.IsProber = true;
  if (info.appName) o.AppName = info.appName;
  return json.enc.encode(JSON.stringify(o));
}

/**
 * ServerInfo JSON as derpserver.go marshals it (`{"version":2}` from derper).
 *
 * @example
 * serverInfoJson({ version: ProtocolVersion });
 */
export function serverInfoJson(info: ServerInfo): Uint8Array {
  const o: Record<string, unknown> = {};
  if (info.version) o.version = info.version;
  if (info.tokenBucketBytesPerSecond) o.TokenBucketBytesPerSecond = info.tokenBucketBytesPerSecond;
  if (info.tokenBucketBytesBurst) o.TokenBucketBytesBurst = info.tokenBucketBytesBurst;
  return json.enc.encode(JSON.stringify(o));
}

/** Parses a JSON object with Go's case-insensitive field matching. */
function parseObject(bytes: Uint8Array, what: string): Map<string, unknown> {
  let v: unknown;
  try {
    v = JSON.parse(json.dec.decode(bytes));
  } catch (err) {
    throw new DerpError('BAD_JSON', `${what}: invalid JSON`, { cause: err });
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) {
    throw new DerpError('BAD_JSON', `${what}: not a JSON object`);
  }
  return new Map(Object.entries(v).map(([k, x]) => [k.toLowerCase(), x]));
}

function num(m: Map<string, unknown>, k: string, what: string): number | undefined {
  const v = m.get(k);
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'number' || !Number.isInteger(v))
    throw new DerpError('BAD_JSON', `${what}: ${k} is not an integer`);
  return v;
}

function bool(m: Map<string, unknown>, k: string, what: string): boolean | undefined {
  const v = m.get(k);
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'boolean') throw new DerpError('BAD_JSON', `${what}: ${k} is not a boolean`);
  return v;
}

function str(m: Map<string, unknown>, k: string, what: string): string | undefined {
  const v = m.get(k);
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string') throw new DerpError('BAD_JSON', `${what}: ${k} is not a string`);
  return v;
}

/**
 * Parses ClientInfo JSON (field names matched case-insensitively, as Go); throws BAD_JSON naming the field.
 *
 * @example
 * const info = parseClientInfo(box.open(sealed));
 */
export function parseClientInfo(bytes: Uint8Array): ClientInfo {
  const m = parseObject(bytes, 'ClientInfo');
  const info: ClientInfo = {
    version: num(m, 'version', 'ClientInfo') ?? 0,
    canAckPings: bool(m, 'canackpings', 'ClientInfo') ?? false,
  };
  const isProber = bool(m, 'isprober', 'ClientInfo');
  if (isProber) info.isProber = true;
  const appName = str(m, 'appname', 'ClientInfo');
  if (appName) info.appName = appName;
  const meshKey = str(m, 'meshkey', 'ClientInfo');
  if (meshKey) info.meshKey = meshKey;
  return info;
}

/**
 * Parses ServerInfo JSON; throws BAD_JSON.
 *
 * @example
 * const info = parseServerInfo(box.open(payload));
 */
export function parseServerInfo(bytes: Uint8Array): ServerInfo {
  const m = parseObject(bytes, 'ServerInfo');
  const info: ServerInfo = { version: num(m, 'version', 'ServerInfo') ?? 0 };
  const rate = num(m, 'tokenbucketbytespersecond', 'ServerInfo');
  if (rate) info.tokenBucketBytesPerSecond = rate;
  const burst = num(m, 'tokenbucketbytesburst', 'ServerInfo');
  if (burst) info.tokenBucketBytesBurst = burst;
  return info;
}
