/**
 * The answers to /machine/register (after Headscale's hscontrol/auth.go handleRegister): a
 * past Expiry logs out (ephemeral nodes are deleted); without an auth key a known, unexpired
 * node key is re-confirmed and an expired one gets NodeKeyExpired; with an auth key the node
 * is created or its machine re-registered. Interactive login is not offered: the reply says so.
 */
import type { MachinePublic } from '../keys.js';
import type { RegisterRequest, RegisterResponse } from '../tailcfg.js';
import type { AuthKeyStore } from './authkeys.js';
import type { Registry } from './registry.js';
import type { NodeRecord } from './store.js';

function authorized(n: NodeRecord, expired: boolean): RegisterResponse {
  return {
    User: { ID: n.userId, DisplayName: 'quackscale' },
    Login: { ID: n.userId, Provider: 'quackscale', LoginName: 'quackscale', DisplayName: 'quackscale' },
    MachineAuthorized: true,
    NodeKeyExpired: expired,
  };
}

function isZeroTime(t: string | undefined): boolean {
  return t === undefined || t === '' || t.startsWith('0001-01-01');
}

/** Handles one RegisterRequest from the Noise peer `machineKey`. */
export async function handleRegister(
  req: RegisterRequest,
  machineKey: MachinePublic,
  registry: Registry,
  authKeys: AuthKeyStore,
): Promise<RegisterResponse> {
  const mkey = machineKey.toString();
  const node = registry.byNodeKey(req.NodeKey);
  if (!isZeroTime(req.Expiry) && Date.parse(req.Expiry) <= Date.now()) {
    if (!node) return { NodeKeyExpired: true };
    if (node.machineKey !== mkey) return { Error: 'node exists with a different machine key' };
    if (node.ephemeral) {
      await registry.delete(node);
      return { NodeKeyExpired: true, MachineAuthorized: false };
    }
    await registry.expire(node);
    return authorized(node, true);
  }
  if (req.Followup) return { Error: 'interactive login is not supported by this server; use an auth key' };
  const authKey = req.Auth?.AuthKey;
  if (!authKey) {
    if (!node) return { Error: 'an auth key is required to register with this server' };
    if (node.machineKey !== mkey) return { Error: 'node exists with a different machine key' };
    return authorized(node, registry.isExpired(node));
  }
  const verdict = await authKeys.check(authKey);
  if (!verdict.ok) return { Error: verdict.reason };
  const registered = await registry.registerWithKey(
    {
      machineKey: mkey,
      nodeKey: req.NodeKey,
      hostinfo: req.Hostinfo ?? null,
      capVersion: req.Version,
      ephemeral: req.Ephemeral === true,
    },
    verdict.record,
  );
  await authKeys.markUsed(verdict.record, registered.id);
  return authorized(registered, false);
}
