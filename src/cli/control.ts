/**
 * `quackscale control …`: the embedded control server (serve, authkey; approve, reject and
 * pending for interactive logins, through the running server's admin API) and the control
 * client (login, netmap, logout) from the command line.
 */

import { readFile } from 'node:fs/promises';
import { ControlClient } from '../control/client.js';
import { NotLoggedInError } from '../control/errors.js';
import type { NetMap, NetNode } from '../control/netmap.js';
import { adminRequest } from '../control/server/admin.js';
import { AuthKeyStore } from '../control/server/authkeys.js';
import type { ApprovedNode, PendingView } from '../control/server/interactive.js';
import { parseRegistrationId } from '../control/server/pending.js';
import type { AclPolicy } from '../control/server/policy.js';
import type { DERPMap } from '../control/tailcfg.js';
import { ListenError, type LocalTailnet, startLocalTailnet } from '../tailnet/local.js';
import { parseCommand } from './command.js';
import { reported } from './control-reported.js';
import { controlApproveRoutes, controlRoutes } from './control-routes.js';
import { parseLimits, positiveOption } from './limits.js';
import { UsageError } from './log.js';
import {
  CONTROL_APPROVE,
  CONTROL_AUTHKEY,
  CONTROL_LOGIN,
  CONTROL_LOGOUT,
  CONTROL_NETMAP,
  CONTROL_PENDING,
  CONTROL_REJECT,
  CONTROL_SERVE,
} from './spec/control.js';

type Run = (argv: string[]) => Promise<number>;

export const controlServe = reported('serve', serve);
export const controlAuthkey = reported('authkey', authkey);
export const controlApprove = reported('approve', (argv) => decide('approve', argv));
export const controlReject = reported('reject', (argv) => decide('reject', argv));
export const controlPending = reported('pending', pending);
export const controlLogin = reported('login', login);
export const controlNetmap = reported('netmap', netmap);
export const controlLogout = reported('logout', logout);

const SUBCOMMANDS: Record<string, Run> = {
  serve: controlServe,
  authkey: controlAuthkey,
  approve: controlApprove,
  reject: controlReject,
  pending: controlPending,
  routes: controlRoutes,
  'approve-routes': controlApproveRoutes,
  login: controlLogin,
  netmap: controlNetmap,
  logout: controlLogout,
};

/** Runs `control <subcommand>`; resolves with the exit status (1 for control-plane errors). */
export async function controlCommand(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  const run = sub === undefined ? undefined : SUBCOMMANDS[sub];
  if (!run) throw new UsageError(sub ? `unknown control subcommand '${sub}'` : 'control wants a subcommand');
  return run(rest);
}

async function readJSON<T>(path: string, what: string): Promise<T> {
  try {
    return JSON.parse(await readFile(path, 'utf8')) as T;
  } catch (err) {
    throw new UsageError(`${what} ${path}: ${(err as Error).message}`);
  }
}

async function serve(argv: string[]): Promise<number> {
  const args = parseCommand(CONTROL_SERVE, argv);
  if (!args) return 0;
  const { values } = args;
  const addr = values.addr;
  const m = /^(.*):(\d+)$/.exec(addr);
  if (!m) throw new UsageError(`--addr must be HOST:PORT, got '${addr}'`);
  const host = m[1]!.replace(/^\[|\]$/g, '');
  if (values.derp && values['derp-map']) throw new UsageError('--derp and --derp-map exclude each other');
  const derpMap = values['derp-map'] ? await readJSON<DERPMap>(values['derp-map'], '--derp-map') : undefined;
  const policy = values.policy ? await readJSON<AclPolicy>(values.policy, '--policy') : undefined;
  // The same coordinator as startLocalTailnet and quackscale_serve(): --derp runs our relay and
  // STUN responder beside it, over TLS with a self-signed certificate pinned in the DERP map (so
  // no client needs a flag); the state keeps this command's layout (all of it in --state-dir).
  const limits = parseLimits(values);
  let local: LocalTailnet;
  try {
    local = await startLocalTailnet({
      stateDir: values['state-dir'],
      controlStateDir: values['state-dir'],
      host,
      controlPort: Number(m[2]),
      derp: values.derp ?? false,
      derpPort: Number(values['derp-port'] ?? 0),
      derpMap,
      policy,
      baseDomain: values['base-domain'],
      serverURL: values['server-url'],
      limits,
      noiseLimits: {
        noiseTimeoutMs: positiveOption('noise-timeout-ms', values['noise-timeout-ms'], true, 2 ** 31 - 1),
        noiseIdleTimeoutMs: positiveOption(
          'noise-idle-timeout-ms',
          values['noise-idle-timeout-ms'],
          true,
          2 ** 31 - 1,
        ),
        maxStreams: positiveOption('max-http2-streams', values['max-http2-streams'], true, 2 ** 31 - 1),
        maxBodyBytes: positiveOption('max-body-bytes', values['max-body-bytes'], true, 2 ** 31 - 1),
      },
      maxMapSessionsPerNode: positiveOption(
        'max-map-sessions-per-node',
        values['max-map-sessions-per-node'],
        true,
      ),
      logger: {
        debug: () => {},
        info: (msg) => console.error(msg),
        warn: (msg) => console.error(`warning: ${msg}`),
      },
    });
  } catch (err) {
    if (err instanceof ListenError) {
      console.error(`quackscale control serve: ${err.message}`);
      return 1;
    }
    throw err;
  }
  if (local.derp) {
    const certName = local.derpMap.Regions['900']?.Nodes[0]?.CertName;
    console.log(
      `derp relay on ${local.derp.url} (${local.derp.addresses.join(', ')}; certificate pinned as ${certName}), ` +
        `STUN on udp ${local.derp.stun?.addresses.join(', ')}`,
    );
  }
  console.log(`control server listening on ${local.controlURL}`);
  // The path, never the token: whoever may approve logins can read it there.
  console.log(
    `admin token for approving interactive logins: ${local.server.adminFile} (quackscale control approve)`,
  );
  // SIGHUP reloads the policy file, as Headscale does: a bad file keeps the policy in force.
  const reload = () => {
    if (!values.policy) return;
    readJSON<AclPolicy>(values.policy, '--policy')
      .then((p) => {
        local.server.setPolicy(p);
        console.error(`policy reloaded from ${values.policy}`);
      })
      .catch((err: unknown) => console.error(`warning: policy not reloaded: ${(err as Error).message}`));
  };
  process.on('SIGHUP', reload);
  await new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  process.off('SIGHUP', reload);
  await local.close();
  return 0;
}

async function authkey(argv: string[]): Promise<number> {
  const args = parseCommand(CONTROL_AUTHKEY, argv);
  if (!args) return 0;
  const { values } = args;
  const ttlHours = values['ttl-hours'] === undefined ? 24 : Number(values['ttl-hours']);
  if (!Number.isFinite(ttlHours) || ttlHours < 0) throw new UsageError('--ttl-hours must be a number ≥ 0');
  const store = new AuthKeyStore(values['state-dir']);
  const { key } = await store.create({
    reusable: values.reusable ?? false,
    ephemeral: values.ephemeral ?? false,
    tags: values.tags ? values.tags.split(',').filter((t) => t !== '') : [],
    ttlMs: ttlHours * 3600_000,
  });
  console.log(key);
  return 0;
}

async function decide(sub: 'approve' | 'reject', argv: string[]): Promise<number> {
  const args = sub === 'approve' ? parseCommand(CONTROL_APPROVE, argv) : parseCommand(CONTROL_REJECT, argv);
  if (!args) return 0;
  const { values, positionals } = args;
  const stateDir = values['state-dir'];
  if (positionals.length !== 1) throw new UsageError(`${sub} takes one login URL or id`);
  const id = parseRegistrationId(positionals[0]!);
  if (!id)
    throw new UsageError(`'${positionals[0]!.slice(0, 120)}' is not a login URL (…/register/<id>) or id`);
  if (sub === 'reject') {
    await adminRequest(stateDir, 'POST', `/register/${id}/reject`);
    console.log('rejected');
    return 0;
  }
  const user = (values as { user?: string }).user;
  const tags = (values as { tags?: string }).tags;
  const body = {
    ...(user ? { user } : {}),
    ...(tags ? { tags: tags.split(',').filter((t) => t !== '') } : {}),
  };
  const res = (await adminRequest(stateDir, 'POST', `/register/${id}/approve`, body)) as {
    approved: ApprovedNode;
  };
  const n = res.approved;
  const tagText = n.tags.length > 0 ? ` tags=${n.tags.join(',')}` : '';
  console.log(
    `approved ${n.name}\t${n.addresses.join(',')}\tuser=${n.user}${tagText}${n.ephemeral ? ' ephemeral' : ''}`,
  );
  return 0;
}

async function pending(argv: string[]): Promise<number> {
  const args = parseCommand(CONTROL_PENDING, argv);
  if (!args) return 0;
  const { values } = args;
  const res = (await adminRequest(values['state-dir'], 'GET', '/admin/pending')) as {
    pending: PendingView[];
  };
  for (const p of res.pending) {
    console.log([p.authURL, p.state, p.hostname || '-', `expires=${p.expires}`].join('\t'));
  }
  return 0;
}

function describe(n: NetNode): string {
  const online = n.online === undefined ? '-' : n.online ? 'online' : 'offline';
  return [
    n.name || n.shortName,
    n.addresses.join(','),
    online,
    `derp=${n.homeDERP || '-'}`,
    `expires=${n.keyExpiry ?? 'never'}`,
  ].join('\t');
}

async function firstNetmap(client: ControlClient): Promise<NetMap> {
  client.start();
  return client.waitForNetmap(undefined, 30_000);
}

async function login(argv: string[]): Promise<number> {
  const args = parseCommand(CONTROL_LOGIN, argv);
  if (!args) return 0;
  const { values } = args;
  const client = await ControlClient.open({
    serverURL: values.server,
    stateDir: values['state-dir'],
    hostname: values.hostname,
    authKey: values.authkey,
    ephemeral: values.ephemeral ?? false,
    onAuthURL: (url) => console.log(`To authenticate, visit:\n\n\t${url}\n`),
  });
  try {
    await client.login();
    const nm = await firstNetmap(client);
    console.log(describe(nm.self));
    return 0;
  } finally {
    await client.close();
  }
}

async function netmap(argv: string[]): Promise<number> {
  const args = parseCommand(CONTROL_NETMAP, argv);
  if (!args) return 0;
  const { values } = args;
  const stateDir = values['state-dir'];
  const client = await ControlClient.open({ stateDir });
  try {
    if (!client.state.login)
      throw new NotLoggedInError(`${stateDir} holds no login; run 'quackscale control login' first`);
    await client.login();
    const nm = await firstNetmap(client);
    const nodes = [nm.self, ...[...nm.peers.values()].sort((a, b) => a.name.localeCompare(b.name))];
    if (values.json) {
      const view = (n: NetNode) => ({
        id: n.id,
        name: n.name,
        addresses: n.addresses,
        online: n.online ?? null,
        derpRegion: n.homeDERP,
        keyExpiry: n.keyExpiry ?? null,
      });
      console.log(
        JSON.stringify(
          { self: view(nm.self), peers: nodes.slice(1).map(view), magicDNSSuffix: nm.magicDNSSuffix },
          null,
          2,
        ),
      );
    } else {
      console.log(`self\t${describe(nm.self)}`);
      for (const p of nodes.slice(1)) console.log(`peer\t${describe(p)}`);
    }
    return 0;
  } finally {
    await client.close();
  }
}

async function logout(argv: string[]): Promise<number> {
  const args = parseCommand(CONTROL_LOGOUT, argv);
  if (!args) return 0;
  const { values } = args;
  const stateDir = values['state-dir'];
  const client = await ControlClient.open({ stateDir });
  try {
    await client.logout();
    console.log('logged out');
    return 0;
  } finally {
    await client.close();
  }
}
