/**
 * Subnet routes and exit nodes on the embedded server, as Headscale keeps them
 * (hscontrol/routes/primary.go, hscontrol/mapper/tail.go):
 * - a node announces prefixes in Hostinfo.RoutableIPs; it serves those an admin approved
 *   (`control approve-routes`, kept in its record) or the policy's `autoApprovers` cover;
 * - for each subnet prefix one online node that serves it is the primary: peers get the prefix
 *   in that node's PrimaryRoutes and AllowedIPs. The primary keeps the prefix while it stays
 *   online, so a second router coming up moves nothing; when it goes offline (or stops serving)
 *   the lowest-id node still serving takes over, and every stream hears of it in the next delta;
 * - exit routes (0.0.0.0/0, ::/0) are not elected: every node that serves them is an exit node
 *   and has them in AllowedIPs, online or not (the client picks one).
 */
import { cidrContains, parseCidr } from '../../netstack/address.js';
import { canonicalRoute, isExitRoute, RouteError, sortRoutes } from '../tsaddr.js';
import type { NodeRecord } from './store.js';

/** Who may have routes approved without an admin (Headscale's policy `autoApprovers`). */
export interface AutoApprovers {
  /** Prefix → approvers (`tag:x`, a user's login name with or without a trailing `@`); covers sub-prefixes. */
  routes?: Record<string, string[]>;
  /** Approvers whose nodes may be exit nodes. */
  exitNode?: string[];
}

/** A route the server refuses to approve; the message names it. */
export class RouteApprovalError extends Error {
  override readonly name = 'RouteApprovalError';
}

/**
 * Canonical, de-duplicated routes for approval; throws RouteApprovalError naming the first bad
 * one. 0.0.0.0/0 and ::/0 go together, as `tailscale up --advertise-exit-node` offers them.
 */
export function parseApprovedRoutes(routes: readonly string[]): string[] {
  const out = new Set<string>();
  for (const r of routes) {
    const problem = routeProblem(r);
    if (problem) throw new RouteApprovalError(problem);
    out.add(canonicalRoute(r));
  }
  if (out.has('0.0.0.0/0') !== out.has('::/0')) {
    throw new RouteApprovalError('approve 0.0.0.0/0 and ::/0 together: together they make an exit node');
  }
  return sortRoutes(out);
}

/** The valid routes a node announces; entries that are not prefixes or hit the tailnet's ranges are ignored. */
export function announcedRoutes(n: NodeRecord): string[] {
  const out = new Set<string>();
  for (const r of n.hostinfo?.RoutableIPs ?? [])
    if (routeProblem(r) === undefined) out.add(canonicalRoute(r));
  return sortRoutes(out);
}

/** What a node's routes look like to an admin (`control routes`). */
export interface NodeRoutes {
  id: number;
  name: string;
  /** What it announces (Hostinfo.RoutableIPs, the valid ones). */
  announced: string[];
  /** What an admin approved (announced or not). */
  approved: string[];
  /** Announced and approved by an admin or by `autoApprovers`. */
  serving: string[];
  /** The subnet routes it is primary for now. */
  primary: string[];
}

/**
 * Route approval and primary election. {@link update} once per change of the node table or the
 * policy, before maps are built; then {@link routesOf} gives what each node's tailcfg.Node carries.
 */
export class RouteElection {
  /** prefix → primary node id. */
  #primary = new Map<string, number>();
  /** node id → what it serves. */
  #serving = new Map<number, string[]>();
  #nodes: readonly NodeRecord[] = [];

  constructor(private readonly log: (msg: string) => void = () => {}) {}

  /**
   * Recomputes what each node serves and elects primaries. `userOf` names a node's user (for
   * `autoApprovers`); `eligible` says whether a node may be primary now (online, not expired).
   */
  update(
    nodes: readonly NodeRecord[],
    autoApprovers: AutoApprovers | undefined,
    userOf: (n: NodeRecord) => string,
    eligible: (n: NodeRecord) => boolean,
  ): void {
    this.#nodes = nodes;
    this.#serving = new Map(nodes.map((n) => [n.id, serving(n, autoApprovers, userOf(n))]));
    const candidates = new Map<string, number[]>();
    for (const n of [...nodes].sort((a, b) => a.id - b.id)) {
      if (!eligible(n)) continue;
      for (const p of this.#serving.get(n.id)!) {
        if (isExitRoute(p)) continue;
        const list = candidates.get(p) ?? [];
        list.push(n.id);
        candidates.set(p, list);
      }
    }
    const next = new Map<string, number>();
    for (const [prefix, ids] of candidates) {
      const current = this.#primary.get(prefix);
      const chosen = current !== undefined && ids.includes(current) ? current : ids[0]!;
      if (current !== undefined && current !== chosen) {
        this.log(`route ${prefix}: primary moves from node ${current} to node ${chosen}`);
      }
      next.set(prefix, chosen);
    }
    for (const [prefix, id] of this.#primary) {
      if (!next.has(prefix)) this.log(`route ${prefix}: no node serves it now (was node ${id})`);
    }
    this.#primary = next;
  }

  /** The routes a node carries in its tailcfg.Node: primary subnets, and exit routes it serves. */
  routesOf(id: number): { primary: string[]; exit: string[] } {
    const primary: string[] = [];
    for (const [prefix, owner] of this.#primary) if (owner === id) primary.push(prefix);
    const exit = (this.#serving.get(id) ?? []).filter(isExitRoute);
    return { primary: sortRoutes(primary), exit };
  }

  /** What a node serves (approved and announced), exit routes included: what its packet filter must cover. */
  servingOf(id: number): readonly string[] {
    return this.#serving.get(id) ?? [];
  }

  /** A node's routes as an admin sees them. */
  view(n: NodeRecord): NodeRoutes {
    return {
      id: n.id,
      name: n.givenName,
      announced: announcedRoutes(n),
      approved: [...(n.approvedRoutes ?? [])],
      serving: [...(this.#serving.get(n.id) ?? [])],
      primary: this.routesOf(n.id).primary,
    };
  }

  /** Every node that announces or has approved routes. */
  list(): NodeRoutes[] {
    return this.#nodes.map((n) => this.view(n)).filter((r) => r.announced.length + r.approved.length > 0);
  }
}

/** What `n` serves: the routes it announces that an admin approved or `autoApprovers` cover. */
function serving(n: NodeRecord, auto: AutoApprovers | undefined, user: string): string[] {
  const approved = new Set(n.approvedRoutes ?? []);
  const approver = (list: readonly string[] | undefined) =>
    (list ?? []).some((a) => (a.startsWith('tag:') ? n.tags.includes(a) : a.replace(/@$/, '') === user));
  return announcedRoutes(n).filter((p) => {
    if (approved.has(p)) return true;
    if (isExitRoute(p)) return approver(auto?.exitNode);
    const c = parseCidr(p);
    return Object.entries(auto?.routes ?? {}).some(([q, who]) => {
      const qc = parseCidr(q);
      return (
        qc.address.length === c.address.length &&
        qc.prefix <= c.prefix &&
        cidrContains(qc, c.address) &&
        approver(who)
      );
    });
  });
}

/** Why `prefix` cannot be a route, or undefined when it can. */
function routeProblem(prefix: string): string | undefined {
  try {
    canonicalRoute(prefix);
    return undefined;
  } catch (err) {
    if (err instanceof RouteError) return err.message;
    throw err;
  }
}

/** Checks an `autoApprovers` block; returns a message naming what is wrong, or undefined. */
export function autoApproversProblem(auto: unknown): string | undefined {
  if (auto === undefined) return undefined;
  if (typeof auto !== 'object' || auto === null) return 'autoApprovers must be an object';
  const { routes, exitNode } = auto as AutoApprovers;
  const isList = (v: unknown) => Array.isArray(v) && v.every((x) => typeof x === 'string');
  if (exitNode !== undefined && !isList(exitNode)) return 'autoApprovers.exitNode must be a list of strings';
  if (routes === undefined) return undefined;
  if (typeof routes !== 'object' || routes === null) return 'autoApprovers.routes must be an object';
  for (const [prefix, who] of Object.entries(routes)) {
    const problem = routeProblem(prefix);
    if (problem) return `autoApprovers.routes: ${problem}`;
    if (!isList(who)) return `autoApprovers.routes['${prefix}'] must be a list of strings`;
  }
  return undefined;
}
