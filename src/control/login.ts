/**
 * The login decision (controlclient/direct.go doLogin, adapted to a client that persists its
 * node key): first refresh a saved registration without an auth key — Headscale answers a
 * known, unexpired node key at once; an expired one gets a fresh node key (OldNodeKey set to
 * the old one); then register with the auth key, or interactively through AuthURL and a
 * Followup request that the server holds until an admin approves.
 */
import { NodeExpiredError, NotLoggedInError, ProtocolError } from './errors.js';
import { PrivateKey } from './keys.js';
import { sendRegister } from './register.js';
import type { ControlState } from './state.js';
import type { Hostinfo, Login, RegisterResponse, User } from './tailcfg.js';
import type { Ts2021Transport } from './transport.js';

export interface LoginParams {
  transport: Ts2021Transport;
  state: ControlState;
  capVersion: number;
  hostinfo: Hostinfo;
  authKey: string | undefined;
  ephemeral: boolean;
  onAuthURL: (url: string) => void;
  save: () => Promise<void>;
}

/** What a successful login reports. */
export interface LoginResult {
  nodeKey: string;
  user: User | undefined;
  login: Login | undefined;
  /** True when an existing registration was reused. */
  refreshed: boolean;
}

function authorized(r: RegisterResponse): boolean {
  return r.MachineAuthorized === true && !r.NodeKeyExpired && !r.AuthURL;
}

async function finish(p: LoginParams, r: RegisterResponse, refreshed: boolean): Promise<LoginResult> {
  p.state.oldNodeKey = undefined;
  p.state.login = {
    ...(p.state.login ?? {}),
    hostname: p.hostinfo.Hostname ?? '',
    userId: r.User?.ID ?? 0,
    loginName: r.Login?.LoginName ?? '',
    displayName: r.Login?.DisplayName ?? r.User?.DisplayName ?? '',
    ephemeral: p.ephemeral,
    registeredAt: new Date().toISOString(),
  };
  await p.save();
  return { nodeKey: p.state.nodeKey!.publicKey.toString(), user: r.User, login: r.Login, refreshed };
}

/** Runs the login; the state is saved on success. */
export async function loginFlow(p: LoginParams): Promise<LoginResult> {
  const base = { capVersion: p.capVersion, hostinfo: p.hostinfo, ephemeral: p.ephemeral };
  let regen = false;
  if (p.state.nodeKey && p.state.login) {
    const r = await sendRegister(p.transport, { ...base, nodeKey: p.state.nodeKey });
    if (authorized(r)) return finish(p, r, true);
    regen = r.NodeKeyExpired === true;
  }
  if (regen || !p.state.nodeKey) {
    p.state.oldNodeKey = regen ? p.state.nodeKey : undefined;
    p.state.nodeKey = PrivateKey.generate('node');
    p.state.login = undefined;
    await p.save();
  }
  const nodeKey = p.state.nodeKey!;
  const oldNodeKey = p.state.oldNodeKey;
  let r = await sendRegister(p.transport, { ...base, nodeKey, oldNodeKey, authKey: p.authKey });
  if (r.NodeKeyExpired) throw new NodeExpiredError(p.transport.opts.serverURL);
  // Interactive: show the URL, then ask again with Followup until the server says yes.
  let lastURL = '';
  for (let i = 0; r.AuthURL && i < 100; i++) {
    if (r.AuthURL !== lastURL) {
      lastURL = r.AuthURL;
      p.onAuthURL(r.AuthURL);
    }
    r = await sendRegister(p.transport, { ...base, nodeKey, oldNodeKey, followup: lastURL });
  }
  if (r.AuthURL) throw new NotLoggedInError(`interactive login at ${r.AuthURL} was not approved`);
  if (!authorized(r)) {
    throw new ProtocolError(`register at ${p.transport.opts.serverURL}: machine not authorized`);
  }
  return finish(p, r, false);
}

export interface LogoutParams {
  transport: Ts2021Transport;
  state: ControlState;
  capVersion: number;
  hostinfo: Hostinfo;
  save: () => Promise<void>;
}

/** Sends Expiry in the past (Go uses Unix 123) and forgets the node key and login. */
export async function logoutFlow(p: LogoutParams): Promise<void> {
  const nodeKey = p.state.nodeKey;
  if (!nodeKey) throw new NotLoggedInError('not logged in: nothing to log out');
  await sendRegister(p.transport, {
    capVersion: p.capVersion,
    hostinfo: p.hostinfo,
    nodeKey,
    expiry: new Date(123_000).toISOString(),
  });
  p.state.nodeKey = undefined;
  p.state.oldNodeKey = undefined;
  p.state.login = undefined;
  await p.save();
}
