/**
 * `quackscale control routes` and `control approve-routes`: subnet routes and exit nodes on the
 * embedded control server, through the running server's admin API (routes-http.ts).
 */
import { adminRequest } from '../control/server/admin.js';
import type { NodeRoutes } from '../control/server/routes.js';
import { parseCommand } from './command.js';
import { reported } from './control-reported.js';
import { CONTROL_APPROVE_ROUTES, CONTROL_ROUTES } from './spec/control.js';

const list = (xs: readonly string[]) => (xs.length > 0 ? xs.join(',') : '-');

function describe(r: NodeRoutes): string {
  return [
    `${r.name} (${r.id})`,
    `announced=${list(r.announced)}`,
    `approved=${list(r.approved)}`,
    `serving=${list(r.serving)}`,
    `primary=${list(r.primary)}`,
  ].join('\t');
}

/** Lists every node's routes. */
export const controlRoutes = reported('routes', async (argv) => {
  const args = parseCommand(CONTROL_ROUTES, argv);
  if (!args) return 0;
  const { values } = args;
  const res = (await adminRequest(values['state-dir'], 'GET', '/admin/routes')) as { routes: NodeRoutes[] };
  if (values.json) console.log(JSON.stringify(res.routes, null, 2));
  else for (const r of res.routes) console.log(describe(r));
  return 0;
});

/** Replaces the routes approved for one node. */
export const controlApproveRoutes = reported('approve-routes', async (argv) => {
  const args = parseCommand(CONTROL_APPROVE_ROUTES, argv);
  if (!args) return 0;
  const { values } = args;
  const routes = values.routes
    .split(',')
    .map((r) => r.trim())
    .filter((r) => r !== '');
  const path = `/admin/routes/${encodeURIComponent(values.node)}`;
  const res = (await adminRequest(values['state-dir'], 'POST', path, { routes })) as { node: NodeRoutes };
  console.log(describe(res.node));
  return 0;
});
