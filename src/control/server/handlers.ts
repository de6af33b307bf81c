/**
 * The answers to /machine/register (after Headscale's hscontrol/auth.go handleRegister): a
 * past Expiry logs out (ephemeral nodes are deleted); a Followup waits for an interactive
 * login to be decided (interactive.ts); without an auth key a known, unexpired node key is
 * re-confirmed, an expired one gets NodeKeyExpired, and an unknown one starts an interactive
 * login (AuthURL); with an auth key the node is created or its machine re-registered.
 */
import type { MachinePublic } from '../keys.js';
import type { RegisterRequest, RegisterResponse } from '../tailcfg.js';
import { authorizedResponse, type InteractiveLogins } from './interactive.js';
import type { Registry } from './registry.js';
import type { AuthKeyBackend } from './state-store.js';

function isZeroTime(t: string | undefined): boolean {
  return t === undefined || t === '' || t.startsWith('0001-01-01');
}

/** What handleRegister works with. */
export interface RegisterContext {
  registry: Registry;
  authKeys: AuthKeyBackend;
  interactive: InteractiveLogins;
  /** Aborted when the client goes away (ends a held Followup). */
  signal: AbortSignal;
}

/**
 * Handles one RegisterRequest from the Noise peer `machineKey`. Throws
 * PendingRegistrationError('too-many') when an interactive login cannot be queued.
 */
export async function handleRegister(
  req: RegisterRequest,
  machineKey: MachinePublic,
  ctx: RegisterContext,
): Promise<RegisterResponse> {
  const { registry, authKeys } = ctx;
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
    return authorizedResponse(node, registry, true);
  }
  if (req.Followup) return ctx.interactive.followup(req, mkey, ctx.signal);
  const authKey = req.Auth?.AuthKey;
  if (!authKey) {
    if (!node) return ctx.interactive.begin(req, mkey);
    if (node.machineKey !== mkey) return { Error: 'node exists with a different machine key' };
    return authorizedResponse(node, registry, registry.isExpired(node));
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
  // A login this machine started interactively is moot now.
  ctx.interactive.opts.pending.deleteMachine(mkey);
  return authorizedResponse(registered, registry, false);
}
