/**
 * Decoders for control messages: JSON text in, typed objects out, or a ProtocolError naming
 * the field that is wrong. Only the shape of fields we rely on is checked; unknown fields
 * pass through untouched (the server is newer than us, usually).
 */
import { ProtocolError } from './errors.js';
import type {
  DERPMap,
  FilterRule,
  MapRequest,
  MapResponse,
  Node,
  PeerChange,
  RegisterRequest,
  RegisterResponse,
} from './tailcfg.js';

type Obj = Record<string, unknown>;

function isObj(v: unknown): v is Obj {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

function parse(text: string, what: string): Obj {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (err) {
    throw new ProtocolError(`${what}: not valid JSON (${(err as Error).message})`, { cause: err });
  }
  if (!isObj(v)) throw new ProtocolError(`${what}: not a JSON object`);
  return v;
}

function check(cond: boolean, what: string, field: string, want: string): void {
  if (!cond) throw new ProtocolError(`${what}: field ${field} is not ${want}`);
}

const isStr = (v: unknown): boolean => typeof v === 'string';
const isNum = (v: unknown): boolean => typeof v === 'number' && Number.isFinite(v);
const isBool = (v: unknown): boolean => typeof v === 'boolean';
const opt = (v: unknown, p: (x: unknown) => boolean): boolean => v === undefined || v === null || p(v);
const strArr = (v: unknown): boolean => Array.isArray(v) && v.every(isStr);

function checkNode(n: unknown, what: string): asserts n is Node {
  check(isObj(n), what, '', 'an object');
  const o = n as Obj;
  check(isNum(o.ID), what, 'ID', 'a number');
  check(isStr(o.Key), what, 'Key', 'a string');
  check(opt(o.Name, isStr), what, 'Name', 'a string');
  check(opt(o.StableID, isStr), what, 'StableID', 'a string');
  check(opt(o.Addresses, strArr), what, 'Addresses', 'a list of strings');
  check(opt(o.AllowedIPs, strArr), what, 'AllowedIPs', 'a list of strings');
  check(opt(o.Endpoints, strArr), what, 'Endpoints', 'a list of strings');
  check(opt(o.DiscoKey, isStr), what, 'DiscoKey', 'a string');
  check(opt(o.HomeDERP, isNum), what, 'HomeDERP', 'a number');
  check(opt(o.DERP, isStr), what, 'DERP', 'a string');
  check(opt(o.Online, isBool), what, 'Online', 'a boolean');
  check(opt(o.LastSeen, isStr), what, 'LastSeen', 'a string');
  check(opt(o.KeyExpiry, isStr), what, 'KeyExpiry', 'a string');
  check(opt(o.Hostinfo, isObj), what, 'Hostinfo', 'an object');
  check(opt(o.Tags, strArr), what, 'Tags', 'a list of strings');
  check(opt(o.Expired, isBool), what, 'Expired', 'a boolean');
}

function checkPatch(p: unknown, what: string): asserts p is PeerChange {
  check(isObj(p), what, '', 'an object');
  const o = p as Obj;
  check(isNum(o.NodeID), what, 'NodeID', 'a number');
  check(opt(o.DERPRegion, isNum), what, 'DERPRegion', 'a number');
  check(opt(o.Endpoints, strArr), what, 'Endpoints', 'a list of strings');
  check(opt(o.Key, isStr), what, 'Key', 'a string');
  check(opt(o.DiscoKey, isStr), what, 'DiscoKey', 'a string');
  check(opt(o.Online, isBool), what, 'Online', 'a boolean');
  check(opt(o.LastSeen, isStr), what, 'LastSeen', 'a string');
  check(opt(o.KeyExpiry, isStr), what, 'KeyExpiry', 'a string');
}

function checkRules(rules: unknown, what: string): asserts rules is FilterRule[] {
  check(Array.isArray(rules), what, '', 'a list');
  for (const r of rules as unknown[]) {
    check(isObj(r), what, 'rule', 'an object');
    const o = r as Obj;
    check(opt(o.SrcIPs, strArr), what, 'SrcIPs', 'a list of strings');
    check(
      opt(o.IPProto, (v) => Array.isArray(v) && v.every(isNum)),
      what,
      'IPProto',
      'a list of numbers',
    );
    check(opt(o.DstPorts, Array.isArray), what, 'DstPorts', 'a list');
    for (const d of (o.DstPorts as unknown[] | undefined) ?? []) {
      check(isObj(d) && isStr(d.IP), what, 'DstPorts[].IP', 'a string');
      const ports = (d as Obj).Ports;
      check(
        opt(ports, (p) => isObj(p) && opt(p.First, isNum) && opt(p.Last, isNum)),
        what,
        'Ports',
        'a range',
      );
    }
  }
}

function checkDERPMap(m: unknown, what: string): asserts m is DERPMap {
  check(isObj(m), what, '', 'an object');
  const regions = (m as Obj).Regions;
  check(opt(regions, isObj), what, 'Regions', 'an object');
  for (const [id, r] of Object.entries((regions as Obj | undefined) ?? {})) {
    if (r === null) continue;
    check(/^-?\d+$/.test(id), what, 'Regions key', 'a number');
    check(isObj(r) && opt(r.Nodes, Array.isArray), what, `Regions[${id}].Nodes`, 'a list');
    for (const n of ((r as Obj).Nodes as unknown[] | undefined) ?? []) {
      check(isObj(n) && opt(n.HostName, isStr) && opt(n.RegionID, isNum), what, 'DERPNode', 'a DERP node');
    }
  }
}

function checkIdMap(v: unknown, what: string, field: string): void {
  check(opt(v, isObj), what, field, 'an object');
  for (const [k, b] of Object.entries((v as Obj | null | undefined) ?? {})) {
    check(/^\d+$/.test(k) && isBool(b), what, field, 'a map of node ID to boolean');
  }
}

/** One map-stream message (already decompressed). */
export function decodeMapResponse(text: string): MapResponse {
  const what = 'MapResponse';
  const o = parse(text, what);
  check(opt(o.KeepAlive, isBool), what, 'KeepAlive', 'a boolean');
  if (o.Node !== undefined && o.Node !== null) checkNode(o.Node, `${what}.Node`);
  for (const f of ['Peers', 'PeersChanged'] as const) {
    check(opt(o[f], Array.isArray), what, f, 'a list');
    for (const n of (o[f] as unknown[] | null | undefined) ?? []) checkNode(n, `${what}.${f}[]`);
  }
  check(
    opt(o.PeersRemoved, (v) => Array.isArray(v) && v.every(isNum)),
    what,
    'PeersRemoved',
    'a list of IDs',
  );
  check(opt(o.PeersChangedPatch, Array.isArray), what, 'PeersChangedPatch', 'a list');
  for (const p of (o.PeersChangedPatch as unknown[] | null | undefined) ?? []) {
    checkPatch(p, `${what}.PeersChangedPatch[]`);
  }
  checkIdMap(o.OnlineChange, what, 'OnlineChange');
  checkIdMap(o.PeerSeenChange, what, 'PeerSeenChange');
  if (o.DERPMap !== undefined && o.DERPMap !== null) checkDERPMap(o.DERPMap, `${what}.DERPMap`);
  if (o.PacketFilter !== undefined && o.PacketFilter !== null)
    checkRules(o.PacketFilter, `${what}.PacketFilter`);
  check(opt(o.PacketFilters, isObj), what, 'PacketFilters', 'an object');
  for (const [k, v] of Object.entries((o.PacketFilters as Obj | null | undefined) ?? {})) {
    if (v !== null) checkRules(v, `${what}.PacketFilters[${k}]`);
  }
  check(opt(o.DNSConfig, isObj), what, 'DNSConfig', 'an object');
  check(opt(o.Domain, isStr), what, 'Domain', 'a string');
  check(opt(o.ControlTime, isStr), what, 'ControlTime', 'a string');
  check(opt(o.UserProfiles, Array.isArray), what, 'UserProfiles', 'a list');
  return o as MapResponse;
}

/** The body of a /machine/register reply. Headscale answers `null` when it deleted an ephemeral node. */
export function decodeRegisterResponse(text: string): RegisterResponse {
  if (text.trim() === 'null') return {};
  const what = 'RegisterResponse';
  const o = parse(text, what);
  for (const f of ['NodeKeyExpired', 'MachineAuthorized'] as const)
    check(opt(o[f], isBool), what, f, 'a boolean');
  for (const f of ['AuthURL', 'Error'] as const) check(opt(o[f], isStr), what, f, 'a string');
  check(opt(o.User, isObj), what, 'User', 'an object');
  check(opt(o.Login, isObj), what, 'Login', 'an object');
  return o as RegisterResponse;
}

/** A /machine/register request (server side). */
export function decodeRegisterRequest(text: string): RegisterRequest {
  const what = 'RegisterRequest';
  const o = parse(text, what);
  check(isNum(o.Version), what, 'Version', 'a number');
  check(isStr(o.NodeKey), what, 'NodeKey', 'a string');
  check(opt(o.OldNodeKey, isStr), what, 'OldNodeKey', 'a string');
  check(opt(o.Auth, isObj), what, 'Auth', 'an object');
  check(opt((o.Auth as Obj | undefined)?.AuthKey, isStr), what, 'Auth.AuthKey', 'a string');
  check(opt(o.Expiry, isStr), what, 'Expiry', 'a string');
  check(opt(o.Followup, isStr), what, 'Followup', 'a string');
  check(opt(o.Hostinfo, isObj), what, 'Hostinfo', 'an object');
  check(opt(o.Ephemeral, isBool), what, 'Ephemeral', 'a boolean');
  return o as RegisterRequest;
}

/** A /machine/map request (server side). */
export function decodeMapRequest(text: string): MapRequest {
  const what = 'MapRequest';
  const o = parse(text, what);
  check(isNum(o.Version), what, 'Version', 'a number');
  check(isStr(o.NodeKey), what, 'NodeKey', 'a string');
  check(opt(o.DiscoKey, isStr), what, 'DiscoKey', 'a string');
  check(opt(o.Compress, isStr), what, 'Compress', 'a string');
  for (const f of ['KeepAlive', 'Stream', 'ReadOnly', 'OmitPeers'] as const)
    check(opt(o[f], isBool), what, f, 'a boolean');
  check(opt(o.Endpoints, strArr), what, 'Endpoints', 'a list of strings');
  check(opt(o.Hostinfo, isObj), what, 'Hostinfo', 'an object');
  return o as MapRequest;
}
