/**
 * The server's node table: registration by auth key or by an admin's approval of an
 * interactive login (new node, or an existing machine re-registering with a fresh node key,
 * keeping its addresses), users, logout, expiry, deletion and the fields map requests update. Every mutation is persisted and then announced with
 * `onChange`, which the session layer turns into map deltas.
 */
import { randomBytes } from 'node:crypto';
import { StateError } from '../errors.js';
import type { MachinePrivate } from '../keys.js';
import type { Hostinfo, UserProfile } from '../tailcfg.js';
import type { AuthKeyRecord } from './authkeys.js';
import { allocateAddresses } from './ipam.js';
import type { ControlStateStore } from './state-store.js';
import type { NodeRecord, ServerStateData } from './store.js';

/** The user every node belongs to unless an admin approved it for another one. */
export const DEFAULT_USER = { id: 1, loginName: 'quackscale' } as const;

/** What a registration grants, from an auth key or from the admin who approved it. */
interface Grant {
  ephemeral: boolean;
  /** Replaces the node's tags when non-empty (an existing node keeps its tags otherwise). */
  tags: readonly string[];
  authKeyId: string | null;
  /** Set on the node when given; new nodes default to DEFAULT_USER. */
  userId?: number;
}

/** Lowercase DNS label from a hostname (Tailscale's dnsname.SanitizeHostname, roughly). */
export function sanitizeLabel(hostname: string): string {
  const s = hostname
    .toLowerCase()
    .replace(/[^a-z0-9-]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, 63);
  return s === '' ? 'node' : s;
}

export interface RegisterInput {
  machineKey: string;
  nodeKey: string;
  hostinfo: Hostinfo | null;
  capVersion: number;
  ephemeral: boolean;
}

/** In-memory nodes backed by the store. */
export class Registry {
  readonly #data: ServerStateData;
  readonly #store: ControlStateStore;
  readonly noiseKey: MachinePrivate;
  /** Called after every change (already persisted). */
  onChange: () => void = () => {};

  constructor(
    data: ServerStateData,
    store: ControlStateStore,
    noiseKey: MachinePrivate,
    readonly nodeKeyTtlMs: number,
  ) {
    this.#data = data;
    this.#store = store;
    this.noiseKey = noiseKey;
  }

  get nodes(): readonly NodeRecord[] {
    return this.#data.nodes;
  }

  byNodeKey(nodeKey: string): NodeRecord | undefined {
    return this.#data.nodes.find((n) => n.nodeKey === nodeKey);
  }

  byId(id: number): NodeRecord | undefined {
    return this.#data.nodes.find((n) => n.id === id);
  }

  isExpired(n: NodeRecord, now = Date.now()): boolean {
    return n.keyExpiry !== null && Date.parse(n.keyExpiry) <= now;
  }

  /** Resolves once the state writes started so far have finished. */
  flush(): Promise<void> {
    return this.#store.flush();
  }

  async #commit(): Promise<void> {
    await this.#store.save(this.#data);
    this.onChange();
  }

  #uniqueName(hostname: string, selfId: number): string {
    const base = sanitizeLabel(hostname);
    const taken = new Set(this.#data.nodes.filter((n) => n.id !== selfId).map((n) => n.givenName));
    if (!taken.has(base)) return base;
    for (let i = 1; ; i++) if (!taken.has(`${base}-${i}`)) return `${base}-${i}`;
  }

  /** The user's profile (a placeholder for an unknown id, which only a hand-edited state could give). */
  userProfile(id: number): UserProfile {
    const name =
      id === DEFAULT_USER.id
        ? DEFAULT_USER.loginName
        : (this.#data.users?.find((u) => u.id === id)?.loginName ?? `user-${id}`);
    return { ID: id, LoginName: name, DisplayName: name };
  }

  /** The id of the user with this login name, creating (and persisting) it if new. */
  async ensureUser(loginName: string): Promise<number> {
    if (loginName === DEFAULT_USER.loginName) return DEFAULT_USER.id;
    this.#data.users ??= [];
    const known = this.#data.users.find((u) => u.loginName === loginName);
    if (known) return known.id;
    const id = Math.max(DEFAULT_USER.id, ...this.#data.users.map((u) => u.id)) + 1;
    this.#data.users.push({ id, loginName, created: new Date().toISOString() });
    await this.#commit();
    return id;
  }

  /** Registers with a verified auth key: reuses the machine's node if it has one. */
  async registerWithKey(input: RegisterInput, key: AuthKeyRecord): Promise<NodeRecord> {
    return this.#register(input, {
      ephemeral: key.ephemeral || input.ephemeral,
      tags: key.tags,
      authKeyId: key.id,
    });
  }

  /**
   * Registers an interactive login an admin approved, with the same rules as an auth key:
   * the machine's node is reused, ephemeral is what the node asked for, and the admin's tags
   * (if any) play the part of the key's tags.
   */
  async registerApproved(
    input: RegisterInput,
    grant: { tags: readonly string[]; userId: number },
  ): Promise<NodeRecord> {
    return this.#register(input, {
      ephemeral: input.ephemeral,
      tags: grant.tags,
      authKeyId: null,
      userId: grant.userId,
    });
  }

  async #register(input: RegisterInput, grant: Grant): Promise<NodeRecord> {
    const now = new Date();
    const expiry = this.nodeKeyTtlMs > 0 ? new Date(now.getTime() + this.nodeKeyTtlMs).toISOString() : null;
    const hostname = input.hostinfo?.Hostname || 'node';
    const node = this.#data.nodes.find((n) => n.machineKey === input.machineKey);
    if (node) {
      node.nodeKey = input.nodeKey;
      node.keyExpiry = expiry;
      node.hostinfo = input.hostinfo;
      node.ephemeral = grant.ephemeral;
      node.authKeyId = grant.authKeyId;
      node.capVersion = input.capVersion;
      if (grant.tags.length > 0) node.tags = [...grant.tags];
      if (grant.userId !== undefined) node.userId = grant.userId;
      if (node.hostname !== hostname) {
        node.hostname = hostname;
        node.givenName = this.#uniqueName(hostname, node.id);
      }
    } else {
      return this.#addNode(input, grant, hostname, now, expiry);
    }
    await this.#commit();
    return node;
  }

  /**
   * A new node with the next free addresses. A store shared by several servers may find that
   * another one handed out the same address first: then the row is taken back and the next
   * free address tried, a bounded number of times. Streams hear of the node once it is kept.
   */
  async #addNode(
    input: RegisterInput,
    grant: Grant,
    hostname: string,
    now: Date,
    expiry: string | null,
  ): Promise<NodeRecord> {
    const taken = (await this.#store.foreignAddresses?.()) ?? new Set<string>();
    for (let attempt = 1; ; attempt++) {
      for (const n of this.#data.nodes) taken.add(n.ipv4);
      const { ipv4, ipv6, next } = allocateAddresses(this.#data.nextAddress, taken);
      this.#data.nextAddress = next;
      const id = this.#data.nextNodeId++;
      const node: NodeRecord = {
        id,
        stableId: `n${randomBytes(8).toString('hex')}`,
        machineKey: input.machineKey,
        nodeKey: input.nodeKey,
        discoKey: `discokey:${'0'.repeat(64)}`,
        hostname,
        givenName: this.#uniqueName(hostname, id),
        userId: grant.userId ?? DEFAULT_USER.id,
        tags: [...grant.tags],
        ipv4,
        ipv6,
        endpoints: [],
        hostinfo: input.hostinfo,
        created: now.toISOString(),
        lastSeen: null,
        keyExpiry: expiry,
        ephemeral: grant.ephemeral,
        authKeyId: grant.authKeyId,
        capVersion: input.capVersion,
        homeDERP: 0,
      };
      this.#data.nodes.push(node);
      const drop = () => this.#data.nodes.splice(this.#data.nodes.indexOf(node), 1);
      try {
        await this.#store.save(this.#data);
      } catch (err) {
        drop();
        throw err;
      }
      if (!this.#store.addressIsOurs || (await this.#store.addressIsOurs(node))) {
        this.onChange();
        return node;
      }
      drop();
      await this.#store.save(this.#data);
      if (attempt >= 16)
        throw new StateError(
          `no free address after ${attempt} tries: the store's other servers took each one`,
        );
      taken.add(ipv4);
    }
  }

  /** Sets the key expiry (now, for logout and admin expiry). */
  async expire(node: NodeRecord, when = new Date()): Promise<void> {
    node.keyExpiry = when.toISOString();
    await this.#commit();
  }

  /** Replaces the routes an admin approved for `node` (canonical prefixes; see routes.ts). */
  async setApprovedRoutes(node: NodeRecord, routes: readonly string[]): Promise<void> {
    if (routes.length === 0) delete node.approvedRoutes;
    else node.approvedRoutes = [...routes];
    await this.#commit();
  }

  async delete(node: NodeRecord): Promise<void> {
    const i = this.#data.nodes.indexOf(node);
    if (i < 0) return;
    this.#data.nodes.splice(i, 1);
    await this.#commit();
  }

  /** Applies a MapRequest's fields; returns whether anything changed (and persists if so). */
  async update(
    node: NodeRecord,
    fields: {
      discoKey?: string;
      endpoints?: string[];
      hostinfo?: Hostinfo | null;
      capVersion?: number;
      lastSeen?: string;
    },
  ): Promise<boolean> {
    let changed = false;
    if (fields.discoKey !== undefined && fields.discoKey !== node.discoKey) {
      node.discoKey = fields.discoKey;
      changed = true;
    }
    if (fields.endpoints !== undefined && fields.endpoints.join() !== node.endpoints.join()) {
      node.endpoints = [...fields.endpoints];
      changed = true;
    }
    if (fields.hostinfo) {
      const derp = fields.hostinfo.NetInfo?.PreferredDERP;
      if (typeof derp === 'number' && derp !== node.homeDERP) {
        node.homeDERP = derp;
        changed = true;
      }
      if (JSON.stringify(fields.hostinfo) !== JSON.stringify(node.hostinfo)) {
        node.hostinfo = fields.hostinfo;
        changed = true;
      }
    }
    if (fields.capVersion !== undefined && fields.capVersion !== node.capVersion) {
      node.capVersion = fields.capVersion;
      changed = true;
    }
    if (fields.lastSeen !== undefined) {
      node.lastSeen = fields.lastSeen;
      changed = true;
    }
    if (changed) await this.#commit();
    return changed;
  }
}
