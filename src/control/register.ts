/**
 * /machine/register (controlclient/direct.go doLogin; headscale hscontrol/auth.go): register
 * a node key with an auth key or interactively (AuthURL, then the same request with
 * Followup set, which the server holds until an admin approves), and log out by sending an
 * Expiry in the past.
 */

import { decodeRegisterResponse } from './decode.js';
import { AuthKeyRejectedError, NodeExpiredError, ProtocolError } from './errors.js';
import type { NodePrivate } from './keys.js';
import { type Hostinfo, type RegisterRequest, type RegisterResponse, ZERO_TIME } from './tailcfg.js';
import type { Ts2021Transport } from './transport.js';

export interface RegisterParams {
  capVersion: number;
  nodeKey: NodePrivate;
  oldNodeKey?: NodePrivate;
  authKey?: string;
  hostinfo: Hostinfo;
  ephemeral?: boolean;
  followup?: string;
  /** RFC 3339; a past time logs out. */
  expiry?: string;
}

/** Builds the RegisterRequest JSON. */
export function registerRequest(p: RegisterParams): RegisterRequest {
  const req: RegisterRequest = {
    Version: p.capVersion,
    NodeKey: p.nodeKey.publicKey.toString(),
    OldNodeKey: p.oldNodeKey ? p.oldNodeKey.publicKey.toString() : `nodekey:${'0'.repeat(64)}`,
    Expiry: p.expiry ?? ZERO_TIME,
    Followup: p.followup ?? '',
    Hostinfo: p.hostinfo,
    Timestamp: new Date(Math.round(Date.now() / 1000) * 1000).toISOString().replace('.000Z', 'Z'),
  };
  if (p.authKey) req.Auth = { AuthKey: p.authKey };
  if (p.ephemeral) req.Ephemeral = true;
  return req;
}

/** Sends one RegisterRequest; maps the server's error text to typed errors. */
export async function sendRegister(
  transport: Ts2021Transport,
  p: RegisterParams,
  signal?: AbortSignal,
): Promise<RegisterResponse> {
  const { status, text } = await transport.postJSON('/machine/register', registerRequest(p), signal);
  const serverURL = transport.opts.serverURL;
  if (status !== 200) {
    throw new ProtocolError(`register at ${serverURL}: HTTP ${status}: ${text.trim().slice(0, 200)}`);
  }
  const resp = decodeRegisterResponse(text);
  if (resp.Error) {
    if (p.authKey && p.expiry === undefined) throw new AuthKeyRejectedError(serverURL, resp.Error);
    if (/expired/i.test(resp.Error)) throw new NodeExpiredError(serverURL);
    throw new ProtocolError(`register at ${serverURL} failed: ${resp.Error}`);
  }
  return resp;
}
