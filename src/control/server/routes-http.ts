/**
 * The admin API for routes (admin.ts: the bearer token from the state dir, from this host):
 * - GET /admin/routes: every node that announces or has approved routes (routes.ts NodeRoutes);
 * - POST /admin/routes/<node id or name> with `{"routes": ["10.1.0.0/16", …]}`: replaces the
 *   routes an admin approved for that node, as `headscale nodes approve-routes` does (an empty
 *   list withdraws them all). The reply is the node's NodeRoutes after the change.
 */
import type http from 'node:http';
import { type AdminCredential, authorizeAdmin, json, readBody } from './admin.js';
import { type NodeRoutes, RouteApprovalError } from './routes.js';

/** What the handler needs from the server. */
export interface RouteAdmin {
  routes(): NodeRoutes[];
  approveRoutes(node: string, routes: readonly string[]): Promise<NodeRoutes>;
}

/** No node has this id or name. */
export class UnknownNodeError extends Error {
  override readonly name = 'UnknownNodeError';
}

/** Serves the paths above; returns false for any other path. */
export async function serveRoutesHTTP(
  req: http.IncomingMessage,
  res: http.ServerResponse,
  server: RouteAdmin,
  admin: AdminCredential,
): Promise<boolean> {
  const path = new URL(req.url ?? '/', 'http://x').pathname;
  const m = /^\/admin\/routes(?:\/([^/]+))?\/?$/.exec(path);
  if (!m) return false;
  const method = m[1] === undefined ? 'GET' : 'POST';
  if (req.method !== method) {
    res.writeHead(405, { allow: method, 'content-type': 'text/plain' }).end(`use ${method}\n`);
    return true;
  }
  if (!authorizeAdmin(req, res, admin)) return true;
  if (method === 'GET') {
    json(res, 200, { routes: server.routes() });
    return true;
  }
  try {
    const body = await readBody(req, (max) => new RouteApprovalError(`body over ${max} bytes`));
    json(res, 200, { node: await server.approveRoutes(decodeURIComponent(m[1]!), parseRoutes(body)) });
  } catch (err) {
    if (err instanceof UnknownNodeError) json(res, 404, { error: err.message });
    else if (err instanceof RouteApprovalError) json(res, 400, { error: err.message });
    else throw err;
  }
  return true;
}

function parseRoutes(text: string): string[] {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    throw new RouteApprovalError('body is not JSON');
  }
  const routes = (v as { routes?: unknown } | null)?.routes;
  if (!Array.isArray(routes) || !routes.every((r) => typeof r === 'string')) {
    throw new RouteApprovalError('body must be {"routes": ["prefix", …]}');
  }
  return routes;
}
