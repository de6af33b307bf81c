// Interactive login on the embedded server (AuthURL, held Followup, admin approval), driven by our own
// ControlClient and by raw RegisterRequests over ts2021 where a test needs to control each request.
import { readFile } from 'node:fs/promises';
import { afterEach, describe, expect, it } from 'vitest';
import { ProtocolError } from '../../src/control/errors.js';
import { makeHostinfo } from '../../src/control/hostinfo.js';
import { PrivateKey } from '../../src/control/keys.js';
import { registerRequest, sendRegister } from '../../src/control/register.js';
import type { ControlServer } from '../../src/control/server/server.js';
import { Ts2021Transport } from '../../src/control/transport.js';
import { CAPABILITY_VERSION } from '../../src/control/version.js';
import { Rig } from './helpers.js';

const rig = new Rig();
const transports: Ts2021Transport[] = [];
afterEach(async () => {
  for (const t of transports.splice(0)) t.close();
  await rig.cleanup();
});

const URL_RE = /^http:\/\/127\.0\.0\.1:\d+\/register\/[A-Za-z0-9_-]{32}$/;

/** Polls `get` until it returns something (bounded; the bound is a deadlock guard, not a measurement). */
async function until<T>(
  what: string,
  get: () => T | undefined | Promise<T | undefined>,
  ms = 10_000,
): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await get();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** A machine speaking raw RegisterRequests to `srv`, one node key. */
function machine(srv: ControlServer, hostname: string) {
  const t = new Ts2021Transport({
    serverURL: srv.url,
    machineKey: PrivateKey.generate('machine'),
    capVersion: CAPABILITY_VERSION,
  });
  transports.push(t);
  const nodeKey = PrivateKey.generate('node');
  const params = (followup?: string) => ({
    capVersion: CAPABILITY_VERSION,
    nodeKey,
    hostinfo: makeHostinfo(hostname),
    followup,
  });
  return {
    register: (followup?: string) => sendRegister(t, params(followup)),
    raw: (followup?: string) => t.postJSON('/machine/register', registerRequest(params(followup))),
  };
}

/** A ControlClient logging in without an auth key; resolves its first AuthURL separately. */
async function interactiveClient(srv: ControlServer, hostname: string, extra = {}) {
  const urls: string[] = [];
  const c = await rig.client({ serverURL: srv.url, hostname, onAuthURL: (u) => urls.push(u), ...extra });
  const login = c.login();
  login.catch(() => {}); // observed by the test; this only keeps an early rejection from being "unhandled"
  const url = await until('AuthURL', () => urls[0]);
  return { c, login, url, urls };
}

async function adminToken(srv: ControlServer): Promise<string> {
  return (JSON.parse(await readFile(srv.adminFile, 'utf8')) as { token: string }).token;
}

describe('interactive login on the embedded server', () => {
  it('gives an AuthURL, holds the Followup, and lets the node in once the admin approves it', async () => {
    const srv = await rig.server({ baseDomain: 'int.test' });
    const { c, login, url } = await interactiveClient(srv, 'inter');
    expect(url).toMatch(URL_RE);
    expect(url.startsWith(`${srv.url}/register/`)).toBe(true);
    const pending = srv.pendingLogins();
    expect(pending.map((p) => [p.authURL, p.hostname, p.state])).toEqual([[url, 'inter', 'pending']]);
    expect(srv.registry.nodes).toHaveLength(0); // nothing registered before approval

    const approved = await srv.approve(url, { user: 'alice', tags: ['tag:web'] });
    expect(approved).toMatchObject({ name: 'inter', user: 'alice', tags: ['tag:web'], ephemeral: false });
    const result = await login;
    expect(result.login?.LoginName).toBe('alice');
    expect(result.user?.ID).toBe(srv.registry.byId(approved.id)!.userId);
    expect(result.user?.ID).not.toBe(1);

    c.start();
    const nm = await c.waitForNetmap(undefined, 5_000);
    expect(nm.self.name).toBe('inter.int.test.');
    expect(nm.self.addresses).toEqual([`${approved.addresses[0]}/32`, `${approved.addresses[1]}/128`]);
    expect(nm.self.tags).toEqual(['tag:web']);
    expect(nm.userProfiles.get(nm.self.user)?.LoginName).toBe('alice');
    // The login is used up: nothing pending, and the URL approves nothing more.
    expect(srv.pendingLogins()).toEqual([]);
    await expect(srv.approve(url)).rejects.toThrow(/no pending login/);
  });

  it('holds the Followup while the login is pending and answers it as soon as the admin approves', async () => {
    const srv = await rig.server(); // the default hold, 60 s
    const m = machine(srv, 'held');
    const url = (await m.register()).AuthURL!;
    let settled = false;
    const held = m.register(url).then((r) => {
      settled = true;
      return r;
    });
    // Ample time for a server that does not hold to have answered (a slow machine can only make this pass).
    await new Promise((r) => setTimeout(r, 300));
    expect(settled).toBe(false);
    await srv.approve(url);
    const r = await held;
    expect(r.MachineAuthorized).toBe(true);
    expect(r.AuthURL).toBeFalsy();
  });

  it('answers a Followup nobody decided in time with the same AuthURL; a later Followup gets in', async () => {
    const srv = await rig.server({ followupWaitMs: 200 });
    const m = machine(srv, 'poller');
    const first = await m.register();
    expect(first.AuthURL).toMatch(URL_RE);
    expect(first.MachineAuthorized).toBeFalsy();
    const again = await m.register(first.AuthURL);
    expect(again.AuthURL).toBe(first.AuthURL);
    expect(again.MachineAuthorized).toBeFalsy();
    expect(srv.pendingLogins()[0]?.state).toBe('pending');

    await srv.approve(first.AuthURL!);
    const done = await m.register(first.AuthURL);
    expect(done.AuthURL).toBeFalsy();
    expect(done.MachineAuthorized).toBe(true);
    expect(done.Login?.LoginName).toBe('quackscale');
    expect(srv.registry.nodes.map((n) => n.hostname)).toEqual(['poller']);
  });

  it('gives a Followup from another machine nothing but its own AuthURL', async () => {
    const srv = await rig.server({ followupWaitMs: 100 });
    const victim = machine(srv, 'victim');
    const urlV = (await victim.register()).AuthURL!;
    const thief = machine(srv, 'thief');
    const stolen = await thief.register(urlV);
    expect(stolen.MachineAuthorized).toBeFalsy();
    expect(stolen.AuthURL).toMatch(URL_RE);
    expect(stolen.AuthURL).not.toBe(urlV);

    await srv.approve(urlV);
    const after = await thief.register(urlV);
    expect(after.MachineAuthorized).toBeFalsy();
    expect(after.AuthURL).toBe(stolen.AuthURL);
    expect((await victim.register(urlV)).MachineAuthorized).toBe(true);
    expect(srv.registry.nodes.map((n) => n.hostname)).toEqual(['victim']);
  });

  it('tells a rejected client so, and registers nothing', async () => {
    const srv = await rig.server();
    const { login, url } = await interactiveClient(srv, 'unwanted');
    srv.reject(url);
    const err = await login.catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ProtocolError);
    expect((err as Error).message).toMatch(/rejected by an admin/);
    expect(srv.registry.nodes).toHaveLength(0);
    await expect(srv.approve(url)).rejects.toThrow(/already rejected/);
  });

  it('serves a page that explains approval, never approves on GET, and needs the admin token to POST', async () => {
    const srv = await rig.server({ followupWaitMs: 100 });
    const m = machine(srv, '<script>alert(1)</script>');
    const url = (await m.register()).AuthURL!;

    const page = await fetch(url);
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toMatch(/^text\/html/);
    expect(page.headers.get('content-security-policy')).toContain("default-src 'none'");
    const html = await page.text();
    expect(html).toContain('quackscale control approve');
    expect(html).toContain(url);
    expect(html).toContain('&#60;script&#62;alert(1)&#60;/script&#62;');
    expect(html).not.toContain('<script>');
    expect((await fetch(url, { method: 'HEAD' })).status).toBe(200);
    expect((await fetch(`${url}/approve`)).status).toBe(405); // a link to the approve URL does nothing either
    expect((await fetch(url, { method: 'POST' })).status).toBe(405);

    const post = (auth?: string, body = '{}') =>
      fetch(`${url}/approve`, { method: 'POST', body, headers: auth ? { authorization: auth } : {} });
    const token = await adminToken(srv);
    expect(token.length).toBeGreaterThanOrEqual(32);
    const none = await post();
    expect(none.status).toBe(401);
    expect(((await none.json()) as { error: string }).error).toMatch(/admin token missing or wrong/);
    expect((await post('Bearer wrong-token-wrong-token-wrong-token-xx')).status).toBe(401);
    expect((await post(`Bearer ${token}x`)).status).toBe(401);
    expect((await post(`Basic ${Buffer.from(`admin:${token}`).toString('base64')}`)).status).toBe(401);
    expect((await fetch(`${srv.url}/admin/pending`)).status).toBe(401);
    // Still pending, nothing registered.
    expect(srv.pendingLogins().map((p) => p.state)).toEqual(['pending']);
    expect(srv.registry.nodes).toHaveLength(0);
    const held = await m.raw(url);
    expect(held.status).toBe(200);
    expect(held.text).toContain(`"AuthURL":"${url}"`);

    const bad = await post(`Bearer ${token}`, '{"tags":["web"]}');
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { error: string }).error).toMatch(/tag 'web' is not of the form tag:name/);
    const list = await fetch(`${srv.url}/admin/pending`, { headers: { authorization: `Bearer ${token}` } });
    expect(((await list.json()) as { pending: { authURL: string }[] }).pending.map((p) => p.authURL)).toEqual(
      [url],
    );

    const ok = await post(`Bearer ${token}`, '{"user":"bob"}');
    expect(ok.status).toBe(200);
    expect(((await ok.json()) as { approved: { user: string } }).approved.user).toBe('bob');
    expect((await m.register(url)).Login?.LoginName).toBe('bob');
    expect((await fetch(url)).status).toBe(404); // used up
    const unknown = await fetch(`${srv.url}/register/${'A'.repeat(32)}`);
    expect(unknown.status).toBe(404);
    expect(await unknown.text()).toContain('unknown or has expired');
  });

  it('forgets an expired login: its page is gone, approval fails, and its Followup gets a new AuthURL', async () => {
    const srv = await rig.server({ pendingTtlMs: 300, followupWaitMs: 50 });
    const m = machine(srv, 'slow');
    const url1 = (await m.register()).AuthURL!;
    await until('expiry', () => (srv.pendingLogins().length === 0 ? true : undefined));
    expect((await fetch(url1)).status).toBe(404);
    await expect(srv.approve(url1)).rejects.toThrow(/unknown, expired or already used/);
    const url2 = (await m.register(url1)).AuthURL;
    expect(url2).toMatch(URL_RE);
    expect(url2).not.toBe(url1);
  });

  it('caps pending logins: the next machine gets HTTP 429 with a clear message; a freed slot is reused', async () => {
    const srv = await rig.server({ maxPending: 2, followupWaitMs: 50 });
    const m1 = machine(srv, 'one');
    const url1 = (await m1.register()).AuthURL!;
    await machine(srv, 'two').register();
    expect((await m1.register()).AuthURL).toBe(url1); // asking again takes no second slot
    const third = await machine(srv, 'three').raw();
    expect(third.status).toBe(429);
    expect(third.text).toMatch(/too many interactive logins are waiting for approval \(2\)/);
    const c = await rig.client({ serverURL: srv.url, hostname: 'four' });
    const err = await c.login().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ProtocolError);
    expect((err as Error).message).toMatch(/HTTP 429: too many interactive logins/);
    expect(srv.pendingLogins()).toHaveLength(2);

    await srv.approve(url1);
    expect((await m1.register(url1)).MachineAuthorized).toBe(true);
    expect((await machine(srv, 'five').register()).AuthURL).toMatch(URL_RE);
  });

  it('an expired node logs in again interactively and keeps its node and addresses; ephemeral as asked', async () => {
    const srv = await rig.server();
    const dir = await rig.dir();
    const first = await rig.client({
      serverURL: srv.url,
      stateDir: dir,
      hostname: 'again',
      authKey: await srv.createAuthKey(),
    });
    await first.login();
    const node = srv.registry.nodes[0]!;
    const ipv4 = node.ipv4;
    await first.close();
    await srv.expireNode(node.id);

    const { login, url } = await interactiveClient(srv, 'again', { stateDir: dir, ephemeral: true });
    const approved = await srv.approve(url);
    await login;
    expect(approved.id).toBe(node.id);
    expect(approved.addresses[0]).toBe(ipv4);
    expect(approved.ephemeral).toBe(true);
    expect(srv.registry.nodes).toHaveLength(1);
    expect(srv.registry.isExpired(srv.registry.byId(node.id)!)).toBe(false);
  });
});
