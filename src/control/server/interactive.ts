/**
 * Interactive login on the embedded server, as Tailscale's clients expect it
 * (controlclient/direct.go doLogin, auto.go authRoutine) and as Headscale serves it
 * (hscontrol/auth.go handleRegisterInteractive, waitForFollowup):
 * 1. A RegisterRequest with no auth key from an unknown node gets `AuthURL`
 *    (`<server>/register/<id>`) and nothing else; the request is kept as pending.
 * 2. The client shows the URL and sends the same request again with `Followup` = that URL. We
 *    hold it until an admin approves (→ MachineAuthorized with User/Login, as for an auth key),
 *    rejects (→ Error), or `followupWaitMs` passes (→ the same AuthURL again: tailscaled backs
 *    off on an unchanged URL and asks again; our client asks again at once).
 * 3. A Followup for an id that is gone (expired, or never ours) starts over with a new AuthURL,
 *    as Headscale's reqToNewRegisterResponse does. A Followup is only honoured from the machine
 *    key that started the login: knowing the URL gets nobody else a node.
 */
import type { ControlLogger } from '../logger.js';
import type { RegisterRequest, RegisterResponse } from '../tailcfg.js';
import {
  type PendingRegistration,
  PendingRegistrationError,
  type PendingRegistrations,
  parseRegistrationId,
} from './pending.js';
import { DEFAULT_USER, type RegisterInput, type Registry } from './registry.js';
import type { NodeRecord } from './store.js';

/** Largest Hostinfo (JSON bytes) kept for a pending login: bounds memory with the entry cap. */
export const MAX_PENDING_HOSTINFO = 32 * 1024;

const TAG_RE = /^tag:[a-z0-9][a-z0-9-]*$/;
const USER_RE = /^[A-Za-z0-9][A-Za-z0-9._@+-]{0,63}$/;

/** What an admin may set when approving. */
export interface ApproveOptions {
  /** Login name of the user the node belongs to (default `quackscale`); created if new. */
  user?: string;
  /** ACL tags for the node (`tag:name`), as an auth key's tags; an existing node keeps its tags without. */
  tags?: string[];
}

/** The node an approval produced. */
export interface ApprovedNode {
  id: number;
  /** The MagicDNS label. */
  name: string;
  hostname: string;
  addresses: [string, string];
  user: string;
  tags: string[];
  ephemeral: boolean;
}

/** A pending login as the admin API lists it. */
export interface PendingView {
  id: string;
  authURL: string;
  state: PendingRegistration['state'];
  hostname: string;
  machineKey: string;
  requestedTags: string[];
  ephemeral: boolean;
  created: string;
  expires: string;
}

/** The RegisterResponse of a node allowed in (also used for auth-key and refresh answers). */
export function authorizedResponse(n: NodeRecord, registry: Registry, expired: boolean): RegisterResponse {
  const u = registry.userProfile(n.userId);
  return {
    User: { ID: u.ID, DisplayName: u.DisplayName },
    Login: { ID: u.ID, Provider: 'quackscale', LoginName: u.LoginName, DisplayName: u.DisplayName },
    MachineAuthorized: true,
    NodeKeyExpired: expired,
  };
}

export interface InteractiveOptions {
  registry: Registry;
  pending: PendingRegistrations;
  /** `<server url>/register/<id>`. */
  authURL: (id: string) => string;
  /** How long a Followup request is held before the AuthURL is sent again. */
  followupWaitMs: number;
  log: ControlLogger;
}

/** The interactive side of /machine/register plus the admin's approve and reject. */
export class InteractiveLogins {
  constructor(readonly opts: InteractiveOptions) {}

  /** Step 1: a node with no auth key and no usable registration asks to join. */
  begin(req: RegisterRequest, machineKey: string): RegisterResponse {
    const hostinfoSize = Buffer.byteLength(JSON.stringify(req.Hostinfo ?? null));
    if (hostinfoSize > MAX_PENDING_HOSTINFO) {
      return {
        Error: `Hostinfo of ${hostinfoSize} bytes is over the ${MAX_PENDING_HOSTINFO} allowed for an interactive login`,
      };
    }
    const input: RegisterInput = {
      machineKey,
      nodeKey: req.NodeKey,
      hostinfo: req.Hostinfo ?? null,
      capVersion: req.Version,
      ephemeral: req.Ephemeral === true,
    };
    const { reg, fresh } = this.opts.pending.begin(input);
    const url = this.opts.authURL(reg.id);
    if (fresh) {
      this.opts.log.info(
        `interactive login waiting for approval: ${req.Hostinfo?.Hostname || 'node'} at ${url} ` +
          '(quackscale control approve --state-dir <this server’s state dir> <url>)',
      );
    }
    return { AuthURL: url };
  }

  /** Step 2: the Followup request, held until the login is decided or `followupWaitMs` passes. */
  async followup(req: RegisterRequest, machineKey: string, signal: AbortSignal): Promise<RegisterResponse> {
    const { registry, pending } = this.opts;
    const id = parseRegistrationId(req.Followup);
    const deadline = Date.now() + this.opts.followupWaitMs;
    for (;;) {
      const node = registry.byNodeKey(req.NodeKey);
      if (node && node.machineKey === machineKey && !registry.isExpired(node)) {
        if (id) pending.delete(id);
        return authorizedResponse(node, registry, false);
      }
      const reg = id ? pending.get(id) : undefined;
      if (!reg || reg.input.machineKey !== machineKey || reg.input.nodeKey !== req.NodeKey) {
        return this.begin(req, machineKey);
      }
      if (reg.state === 'rejected')
        return { Error: 'the login was rejected by an admin of this control server' };
      if (reg.state === 'approved') {
        // Approved, but its node has since been deleted or expired: start over.
        pending.delete(reg.id);
        return this.begin(req, machineKey);
      }
      const left = deadline - Date.now();
      if (left <= 0 || signal.aborted) return { AuthURL: this.opts.authURL(reg.id) };
      await pending.wait(reg.id, left, signal);
    }
  }

  #find(idOrAuthURL: string): PendingRegistration {
    const id = parseRegistrationId(idOrAuthURL);
    if (!id) {
      throw new PendingRegistrationError(
        'bad-request',
        'not a login URL (…/register/<id>) or registration id',
      );
    }
    const reg = this.opts.pending.get(id);
    if (!reg) {
      throw new PendingRegistrationError(
        'not-found',
        `no pending login ${id.slice(0, 8)}…: unknown, expired or already used`,
      );
    }
    return reg;
  }

  /** Approves a pending login: the node is registered now, and its held Followup answered. */
  async approve(idOrAuthURL: string, opts: ApproveOptions = {}): Promise<ApprovedNode> {
    const { registry, pending } = this.opts;
    if (opts.user !== undefined && !USER_RE.test(opts.user)) {
      throw new PendingRegistrationError(
        'bad-request',
        'user must be 1-64 of A-Z a-z 0-9 . _ @ + - (starting with a letter or digit)',
      );
    }
    const badTag = (opts.tags ?? []).find((t) => !TAG_RE.test(t));
    if (badTag !== undefined) {
      throw new PendingRegistrationError(
        'bad-request',
        `tag '${badTag.slice(0, 64)}' is not of the form tag:name`,
      );
    }
    const reg = this.#find(idOrAuthURL);
    if (reg.state === 'rejected')
      throw new PendingRegistrationError('rejected', 'this login was already rejected');
    const existing =
      reg.state === 'approved' && reg.nodeId !== undefined ? registry.byId(reg.nodeId) : undefined;
    if (existing) return view(existing, registry);
    const userId = await registry.ensureUser(opts.user ?? DEFAULT_USER.loginName);
    const node = await registry.registerApproved(reg.input, { tags: opts.tags ?? [], userId });
    pending.settle(reg.id, 'approved', node.id);
    this.opts.log.info(
      `approved interactive login: ${node.givenName} (${node.ipv4}) for ${registry.userProfile(userId).LoginName}`,
    );
    return view(node, registry);
  }

  /** Rejects a pending login: its Followup gets an error, and the node must start again. */
  reject(idOrAuthURL: string): void {
    const reg = this.#find(idOrAuthURL);
    if (reg.state === 'approved') {
      throw new PendingRegistrationError(
        'bad-request',
        'this login was already approved; delete or expire the node instead',
      );
    }
    this.opts.pending.settle(reg.id, 'rejected');
    this.opts.log.info(`rejected interactive login of ${reg.input.hostinfo?.Hostname || 'node'}`);
  }

  /** The live pending logins. */
  list(): PendingView[] {
    return this.opts.pending.list().map((r) => ({
      id: r.id,
      authURL: this.opts.authURL(r.id),
      state: r.state,
      hostname: r.input.hostinfo?.Hostname || '',
      machineKey: r.input.machineKey,
      requestedTags: [...(r.input.hostinfo?.RequestTags ?? [])],
      ephemeral: r.input.ephemeral,
      created: new Date(r.created).toISOString(),
      expires: new Date(r.expires).toISOString(),
    }));
  }
}

function view(n: NodeRecord, registry: Registry): ApprovedNode {
  return {
    id: n.id,
    name: n.givenName,
    hostname: n.hostname,
    addresses: [n.ipv4, n.ipv6],
    user: registry.userProfile(n.userId).LoginName,
    tags: [...n.tags],
    ephemeral: n.ephemeral,
  };
}
