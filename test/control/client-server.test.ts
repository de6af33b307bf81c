import { readFile, stat, writeFile } from 'node:fs/promises';
import { createServer, request } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import {
  AuthKeyRejectedError,
  NodeExpiredError,
  ServerUnreachableError,
  StateError,
  WrongProtocolError,
} from '../../src/control/errors.js';
import { PrivateKey } from '../../src/control/keys.js';
import type { NetMapChange } from '../../src/control/netmap.js';
import { Ts2021Transport } from '../../src/control/transport.js';
import { Rig } from './helpers.js';

const rig = new Rig();
afterEach(() => rig.cleanup());

async function up(url: string, hostname: string, authKey: string, extra = {}) {
  const c = await rig.client({ serverURL: url, hostname, authKey, ...extra });
  await c.login();
  c.start();
  await c.waitForNetmap(undefined, 5_000);
  return c;
}

function changesOf(c: Awaited<ReturnType<typeof up>>): NetMapChange[] {
  const seen: NetMapChange[] = [];
  c.on('netmap', (_nm, changes) => seen.push(...changes));
  return seen;
}

describe('client ↔ embedded server', () => {
  it('registers nodes with CGNAT and ULA addresses and MagicDNS names; peers see each other', async () => {
    const srv = await rig.server({ baseDomain: 'quack.test' });
    const key = await srv.createAuthKey({ reusable: true });
    const a = await up(srv.url, 'alpha', key);
    const b = await up(srv.url, 'Beta Box', key);
    const nmA = await a.waitForNetmap(
      (m) => m.peers.size === 1 && [...m.peers.values()][0]!.online === true,
      5_000,
    );
    expect(nmA.self.name).toBe('alpha.quack.test.');
    expect(nmA.self.addresses).toEqual(['100.64.0.1/32', 'fd7a:115c:a1e0::1/128']);
    expect(nmA.domain).toBe('quack.test');
    expect(nmA.dns?.Domains).toEqual(['quack.test']);
    const peer = [...nmA.peers.values()][0]!;
    expect(peer.name).toBe('beta-box.quack.test.');
    expect(peer.addresses).toEqual(['100.64.0.2/32', 'fd7a:115c:a1e0::2/128']);
    expect(peer.nodeKey).toBe(b.nodeKey!.toString());
    expect(peer.online).toBe(true);
    expect(nmA.packetFilter).toEqual([
      { SrcIPs: ['*'], DstPorts: [{ IP: '*', Ports: { First: 0, Last: 65535 } }] },
    ]);
  });

  it('streams joins, endpoint patches, going offline and ephemeral removal as deltas', async () => {
    const srv = await rig.server({ ephemeralTimeoutMs: 150 });
    const a = await up(srv.url, 'alpha', await srv.createAuthKey({ reusable: true }));
    const seen = changesOf(a);
    const b = await up(srv.url, 'beta', await srv.createAuthKey({ ephemeral: true }));
    const joined = await a.waitForNetmap((m) => m.peers.size === 1, 5_000);
    const id = [...joined.peers.keys()][0]!;
    expect(seen).toContainEqual({ kind: 'peer-added', id, name: 'beta.tailnet.internal.' });
    expect(seen.some((c) => c.kind === 'full')).toBe(false);

    await b.setEndpoints(['127.0.0.1:41641']);
    const patched = await a.waitForNetmap((m) => m.peers.get(id)?.endpoints[0] === '127.0.0.1:41641', 5_000);
    expect(patched.peers.get(id)?.endpoints).toEqual(['127.0.0.1:41641']);
    expect(seen.some((c) => c.kind === 'peer-changed' && c.fields.includes('endpoints'))).toBe(true);

    await b.close();
    await a.waitForNetmap((m) => m.peers.get(id)?.online === false, 5_000);
    expect(seen.some((c) => c.kind === 'peer-changed' && c.fields.includes('online'))).toBe(true);
    await a.waitForNetmap((m) => m.peers.size === 0, 5_000);
    expect(seen).toContainEqual({ kind: 'peer-removed', id, name: 'beta.tailnet.internal.' });
    expect(srv.registry.byId(id)).toBeUndefined();
  });

  it('hands out the given DERP map and sends Hostinfo changes to peers as PeersChanged', async () => {
    const derpMap = {
      Regions: {
        '901': {
          RegionID: 901,
          RegionCode: 'x',
          RegionName: 'X',
          Nodes: [{ Name: '901a', RegionID: 901, HostName: '127.0.0.1', DERPPort: 3340 }],
        },
      },
    };
    const srv = await rig.server({ derpMap });
    const key = await srv.createAuthKey({ reusable: true });
    const a = await up(srv.url, 'alpha', key);
    expect(a.netmap!.derpMap).toEqual(derpMap);
    const seen = changesOf(a);
    const b = await up(srv.url, 'beta', key, { hostinfo: { NetInfo: { PreferredDERP: 901 } } });
    const id = b.netmap!.self.id;
    await a.waitForNetmap((m) => m.peers.get(id)?.homeDERP === 901, 5_000);
    await b.setHostinfo({ OSVersion: 'changed-1' });
    const nm = await a.waitForNetmap((m) => m.peers.get(id)?.hostinfo?.OSVersion === 'changed-1', 5_000);
    expect(nm.peers.get(id)?.homeDERP).toBe(901);
    expect(seen.some((c) => c.kind === 'peer-changed' && c.id === id && c.fields.includes('*'))).toBe(true);
  });

  it('refuses a bad, expired or reused auth key with AuthKeyRejectedError', async () => {
    const srv = await rig.server();
    const bad = await rig.client({
      serverURL: srv.url,
      hostname: 'x',
      authKey: 'qskey-auth-000000000000-nope',
    });
    await expect(bad.login()).rejects.toBeInstanceOf(AuthKeyRejectedError);
    const once = await srv.createAuthKey();
    await up(srv.url, 'first', once);
    const second = await rig.client({ serverURL: srv.url, hostname: 'second', authKey: once });
    const err = await second.login().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AuthKeyRejectedError);
    expect((err as Error).message).toMatch(/already used/);
    const expired = await srv.authKeys.create({ ttlMs: 1 });
    await new Promise((r) => setTimeout(r, 5));
    const late = await rig.client({ serverURL: srv.url, hostname: 'late', authKey: expired.key });
    await expect(late.login()).rejects.toThrow(/expired/);
  });

  it('retries an unreachable server with backoff, then gives ServerUnreachableError', async () => {
    const probe = createServer();
    await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
    const port = (probe.address() as AddressInfo).port;
    await new Promise<void>((r) => probe.close(() => r()));
    const c = await rig.client({
      serverURL: `http://127.0.0.1:${port}`,
      hostname: 'x',
      authKey: 'k',
      loginTimeoutMs: 600,
    });
    const retries: number[] = [];
    c.on('retry', (_e, delay) => retries.push(delay));
    const err = await c.login().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ServerUnreachableError);
    expect((err as Error).message).toMatch(/ECONNREFUSED/);
    expect(retries.length).toBeGreaterThan(1);
  });

  it('says WrongProtocolError when the server does not speak ts2021', async () => {
    const web = createServer((req, res) => {
      if (req.url?.startsWith('/key')) res.writeHead(200).end(`{"publicKey":"mkey:${'ab'.repeat(32)}"}`);
      else res.writeHead(200).end('hello');
    });
    await new Promise<void>((r) => web.listen(0, '127.0.0.1', r));
    try {
      const url = `http://127.0.0.1:${(web.address() as AddressInfo).port}`;
      const c = await rig.client({ serverURL: url, hostname: 'x', authKey: 'k' });
      const err = await c.login().catch((e: unknown) => e);
      expect(err).toBeInstanceOf(WrongProtocolError);
      expect((err as Error).message).toMatch(/HTTP 200, not 101/);
    } finally {
      await new Promise<void>((r) => web.close(() => r()));
    }
  });

  it('keeps its state across a server restart: same Noise key, node and addresses; streams resume', async () => {
    const stateDir = await rig.dir('qs-ctls-');
    const srv = await rig.server({ stateDir });
    const port = Number(new URL(srv.url).port);
    const noiseKey = srv.registry.noiseKey.publicKey.toString();
    const clientDir = await rig.dir();
    const a = await up(srv.url, 'alpha', await srv.createAuthKey(), { stateDir: clientDir });
    const first = a.netmap!;
    await srv.close();
    rig.servers.splice(rig.servers.indexOf(srv), 1);
    const again = await rig.server({ stateDir, port });
    expect(again.registry.noiseKey.publicKey.toString()).toBe(noiseKey);
    const resumed = await a.waitForNetmap((m) => m !== first && m.seq === 1, 10_000);
    expect(resumed.self.addresses).toEqual(first.self.addresses);
    expect(resumed.self.id).toBe(first.self.id);
    await a.close();
    const b = await rig.client({ serverURL: again.url, stateDir: clientDir });
    const relogin = await b.login();
    expect(relogin.refreshed).toBe(true);
    expect(relogin.nodeKey).toBe(first.self.nodeKey);
  });

  it('re-registers on key expiry with an auth key, and reports NodeExpiredError without one', async () => {
    const srv = await rig.server({ sweepMs: 50 });
    const key = await srv.createAuthKey({ reusable: true });
    const a = await up(srv.url, 'alpha', key);
    const oldKey = a.nodeKey!.toString();
    const id = a.netmap!.self.id;
    await srv.expireNode(id);
    const renewed = await a.waitForNetmap((m) => m.self.nodeKey !== oldKey && !m.self.expired, 5_000);
    expect(renewed.self.id).toBe(id);
    expect(renewed.self.addresses).toEqual(a.netmap!.self.addresses);

    const dir = await rig.dir();
    const b = await up(srv.url, 'beta', key, { stateDir: dir });
    const noKey = await rig.client({ serverURL: srv.url, stateDir: dir });
    await b.close();
    await noKey.login();
    const failed = new Promise<Error>((resolve) => noKey.on('error', resolve));
    noKey.start();
    await noKey.waitForNetmap(undefined, 5_000);
    await srv.expireNode(noKey.netmap!.self.id);
    expect(await failed).toBeInstanceOf(NodeExpiredError);
    expect(noKey.lastError).toBeInstanceOf(NodeExpiredError);
  });

  it('logs out: the server expires the node (or deletes an ephemeral one) and the client forgets its key', async () => {
    const srv = await rig.server();
    const a = await up(srv.url, 'alpha', await srv.createAuthKey());
    const id = a.netmap!.self.id;
    await a.logout();
    expect(a.nodeKey).toBeUndefined();
    expect(srv.registry.isExpired(srv.registry.byId(id)!)).toBe(true);
    const e = await up(srv.url, 'eph', await srv.createAuthKey({ ephemeral: true }));
    const eid = e.netmap!.self.id;
    await e.logout();
    expect(srv.registry.byId(eid)).toBeUndefined();
  });

  it('compiles the ACL policy into each node’s packet filter', async () => {
    const srv = await rig.server({
      policy: { acls: [{ action: 'accept', src: ['tag:web'], dst: ['db:5432'], proto: 'tcp' }] },
    });
    const db = await up(srv.url, 'db', await srv.createAuthKey());
    const web = await up(srv.url, 'web', await srv.createAuthKey({ tags: ['tag:web'] }));
    const nm = await db.waitForNetmap((m) => m.packetFilter.length > 0, 5_000);
    const webAddrs = web.netmap!.self.addresses.map((a) => a.split('/')[0]!).sort();
    expect(nm.packetFilter).toEqual([
      {
        SrcIPs: webAddrs,
        DstPorts: db.netmap!.self.addresses.map((a) => ({
          IP: a.split('/')[0],
          Ports: { First: 5432, Last: 5432 },
        })),
        IPProto: [6],
      },
    ]);
    expect(web.netmap!.packetFilter).toEqual([]);
    srv.setPolicy(undefined);
    await web.waitForNetmap(
      (m) => m.packetFilter.length === 1 && m.packetFilter[0]!.SrcIPs[0] === '*',
      5_000,
    );
  });

  it('gets keepalives, and reconnects when the stream goes silent past the watchdog', async () => {
    const srv = await rig.server({ keepAliveMs: 30 });
    const a = await up(srv.url, 'alpha', await srv.createAuthKey());
    await new Promise<void>((resolve) => a.once('keepalive', resolve));
    const quiet = await rig.server({ keepAliveMs: 60_000 });
    const b = await up(quiet.url, 'beta', await quiet.createAuthKey(), { watchdogMs: 150 });
    const err = await new Promise<Error>((resolve) => b.once('retry', resolve));
    expect(err).toBeInstanceOf(ServerUnreachableError);
    expect(err.message).toMatch(/no map message/);
    const before = b.netmap;
    const again = await b.waitForNetmap((m) => m !== before, 5_000);
    expect(again.seq).toBe(1);
    expect(again.self.name).toBe('beta.tailnet.internal.');
  });

  it('rebind() drops the connection: the stream comes back on a new one and endpoint updates go through', async () => {
    const srv = await rig.server();
    const key = await srv.createAuthKey({ reusable: true });
    const a = await up(srv.url, 'alpha', key);
    const b = await up(srv.url, 'beta', key);
    const before = b.netmap;
    b.rebind();
    // A new stream starts with a full map again.
    await b.waitForNetmap((m) => m !== before && m.seq === 1, 5_000);
    await b.setEndpoints(['192.0.2.9:41641']);
    const id = [...(await a.waitForNetmap((m) => m.peers.size === 1, 5_000)).peers.keys()][0]!;
    await a.waitForNetmap((m) => m.peers.get(id)?.endpoints[0] === '192.0.2.9:41641', 5_000);
  });

  it('the server answers malformed and outdated requests with errors, not crashes', async () => {
    const srv = await rig.server();
    expect((await fetch(`${srv.url}/key`)).status).toBe(400);
    expect(await (await fetch(`${srv.url}/key?v=130`)).json()).toEqual({
      legacyPublicKey: `mkey:${'0'.repeat(64)}`,
      publicKey: srv.registry.noiseKey.publicKey.toString(),
    });
    const badUpgrade = await new Promise<number>((resolve, reject) => {
      const req = request(`${srv.url}/ts2021`, {
        method: 'POST',
        headers: { Upgrade: 'websocket-ish', Connection: 'upgrade' },
      });
      req.on('response', (res) => resolve(res.statusCode ?? 0));
      req.on('upgrade', () => reject(new Error('upgraded')));
      req.on('error', reject);
      req.end();
    });
    expect(badUpgrade).toBe(400);
    const t = new Ts2021Transport({
      serverURL: srv.url,
      machineKey: PrivateKey.generate('machine'),
      capVersion: 130,
    });
    try {
      expect((await t.postJSON('/machine/register', { Version: 'x' })).status).toBe(400);
      const old = await t.postJSON('/machine/register', {
        Version: 90,
        NodeKey: `nodekey:${'1'.repeat(64)}`,
      });
      expect(old.status).toBe(400);
      expect(old.text).toMatch(/unsupported client version 90/);
      const unknown = await t.postJSON('/machine/map', {
        Version: 130,
        NodeKey: `nodekey:${'1'.repeat(64)}`,
      });
      expect(unknown.status).toBe(404);
      expect((await t.postJSON('/machine/whoami', {})).status).toBe(501);
    } finally {
      t.close();
    }
    const oldNoise = new Ts2021Transport({
      serverURL: srv.url,
      machineKey: PrivateKey.generate('machine'),
      capVersion: 100,
    });
    const err = await oldNoise.postJSON('/machine/register', {}).catch((e: unknown) => e);
    oldNoise.close();
    expect(err).toBeInstanceOf(WrongProtocolError);
    expect((err as Error).message).toMatch(/unsupported client version 100/);
  });

  it('keeps the state dir 0700 and the state file 0600, with keys only in that file', async () => {
    const srv = await rig.server();
    const dir = await rig.dir();
    const a = await up(srv.url, 'alpha', await srv.createAuthKey(), { stateDir: dir });
    expect((await stat(dir)).mode & 0o777).toBe(0o700);
    const file = join(dir, 'control-state.json');
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    const text = await readFile(file, 'utf8');
    expect(text).toMatch(/"machineKey": "privkey:[0-9a-f]{64}"/);
    const secret = /"machineKey": "privkey:([0-9a-f]{64})"/.exec(text)![1]!;
    expect(JSON.stringify(a.state)).not.toContain(secret);
    expect(String(a.state.machineKey)).toBe('privkey:[redacted]');
    // A corrupt file is reported without quoting it.
    await a.close();
    await writeFile(file, (await readFile(file, 'utf8')).slice(0, 120));
    const err = await rig.client({ stateDir: dir }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StateError);
    expect((err as Error).message).not.toContain(secret.slice(0, 16));
    expect(String((err as Error).cause ?? '')).not.toContain(secret.slice(0, 16));
  });
});
