// ts2021 over WebSocket (what a web page speaks) against our control server: login, netmaps both ways with a
// client on the HTTP upgrade, CORS on /key, and refusals a browser would see as a closed socket.
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { UPGRADE_HEADER_VALUE } from '../../src/control/dial.js';
import { WrongProtocolError } from '../../src/control/errors.js';
import { PrivateKey } from '../../src/control/keys.js';
import { fetchServerKeyWeb, upgradeURL } from '../../src/control/ws-dial.js';
import { Rig } from './helpers.js';

const rig = new Rig();
afterEach(() => rig.cleanup());

describe('ts2021 over WebSocket with our server', () => {
  it('a WebSocket client and an HTTP-upgrade client register and see each other', async () => {
    const srv = await rig.server();
    const key = await srv.createAuthKey({ reusable: true });
    const ws = await rig.client({ serverURL: srv.url, hostname: 'page', authKey: key, websocket: true });
    await ws.login();
    ws.start();
    const plain = await rig.client({ serverURL: srv.url, hostname: 'host', authKey: key });
    await plain.login();
    plain.start();
    const nm = await ws.waitForNetmap(
      (m) => [...m.peers.values()].some((p) => p.name.startsWith('host.')),
      5_000,
    );
    expect(nm.self.name).toMatch(/^page\./);
    const other = await plain.waitForNetmap(
      (m) => [...m.peers.values()].some((p) => p.name.startsWith('page.')),
      5_000,
    );
    expect([...other.peers.values()].find((p) => p.name.startsWith('page.'))!.nodeKey).toBe(
      ws.nodeKey!.toString(),
    );
  });

  it('a server key given up front is the one used: a wrong one fails the handshake', async () => {
    const srv = await rig.server();
    const key = await srv.createAuthKey({ reusable: true });
    const wrong = PrivateKey.generate('machine').publicKey.toString();
    const c = await rig.client({
      serverURL: srv.url,
      hostname: 'x',
      authKey: key,
      websocket: true,
      controlKey: wrong,
    });
    await expect(c.login()).rejects.toThrow();
    const controlKey = (await fetchServerKeyWeb(srv.url, 100)).toString();
    const d = await rig.client({
      serverURL: srv.url,
      hostname: 'keyed',
      authKey: key,
      websocket: true,
      controlKey,
    });
    await d.login();
    expect(d.nodeKey).toBeDefined();
  });

  it('/key answers with CORS for a page on another origin', async () => {
    const srv = await rig.server();
    const res = await fetch(`${srv.url}/key?v=100`, { headers: { origin: 'http://page.example' } });
    expect(res.headers.get('access-control-allow-origin')).toBe('*');
    expect(((await res.json()) as { publicKey: string }).publicKey).toMatch(/^mkey:/);
  });

  it('refuses a WebSocket without the control subprotocol or with a bad initiation (close 1008)', async () => {
    const srv = await rig.server();
    const closeOf = (url: string, protocols: string[]) =>
      new Promise<{ code: number; reason: string }>((resolve, reject) => {
        const ws = new WebSocket(url, protocols);
        ws.on('close', (code, reason) => resolve({ code, reason: reason.toString() }));
        ws.on('error', reject);
      });
    const url = upgradeURL(srv.url, new Uint8Array(101));
    const bad = await closeOf(url.href, [UPGRADE_HEADER_VALUE]);
    expect(bad.code).toBe(1008);
    expect(bad.reason).toMatch(/noise handshake failed/);
    const noParam = await closeOf(`${srv.url.replace('http:', 'ws:')}/ts2021`, [UPGRADE_HEADER_VALUE]);
    expect([noParam.code, noParam.reason]).toEqual([1008, 'missing Tailscale handshake parameter']);
    const noProto = await closeOf(url.href, []);
    expect(noProto.code).toBe(1008);
  });

  it('a server that is not a control server is a clear error', async () => {
    await expect(fetchServerKeyWeb('http://127.0.0.1:1', 100, 2000)).rejects.toThrow(/GET \/key/);
    expect(() => upgradeURL('ftp://x', new Uint8Array(1))).toThrow(WrongProtocolError);
  });
});
