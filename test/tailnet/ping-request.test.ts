// Control's PingRequests answered by our node (ping-request.ts), sent by our control server (ControlServer.
// pingNode, through the embedded local tailnet): a HEAD to prove the node alive, disco, TSMP and ICMP pings of
// a peer with their PingResponse, and a c2n request to /echo.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PingResponse } from '../../src/control/tailcfg.js';
import type { LocalTailnet } from '../../src/tailnet/local.js';
import { C2nRequestError, parseC2nRequest, serveC2n } from '../../src/tailnet/ping-request.js';
import { Tailnet } from '../../src/tailnet/tailnet.js';
import { type LocalPair, localPair, tmp } from './local-pair.js';

describe('c2n requests', () => {
  it('parses an HTTP/1.1 request and echoes /echo; other paths are 404', () => {
    const req = parseC2nRequest(
      Buffer.from('POST /echo?x=1 HTTP/1.1\r\nHost: n\r\nContent-Length: 5\r\n\r\nhello'),
    );
    expect(req).toEqual({ method: 'POST', path: '/echo', body: Buffer.from('hello') });
    expect(serveC2n(req).toString()).toBe(
      'HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Type: application/octet-stream\r\n\r\nhello',
    );
    expect(serveC2n({ method: 'GET', path: '/debug/prefs', body: Buffer.alloc(0) }).toString()).toMatch(
      /^HTTP\/1\.1 404 Not Found\r\n/,
    );
  });

  it('refuses what is not an HTTP request', () => {
    for (const bad of [
      '',
      'GET / HTTP/1.1\r\n',
      'hello\r\n\r\n',
      'POST /echo HTTP/1.1\r\nContent-Length: 9\r\n\r\nab',
    ])
      expect(() => parseC2nRequest(Buffer.from(bad)), JSON.stringify(bad)).toThrow(C2nRequestError);
  });
});

describe('PingRequest from our control server', () => {
  let pair: LocalPair;
  let local: LocalTailnet;
  let a: Tailnet;
  let b: Tailnet;
  let aId = 0;
  let bIp = '';
  beforeAll(async () => {
    pair = await localPair(['pa', 'pb']);
    ({ local, a, b } = pair);
    aId = a.tailscaleStatus().Self.NodeID;
    bIp = b.tailscaleStatus().TailscaleIPs![0]!;
  });
  afterAll(() => pair.close());

  it('no Types: the node answers with a HEAD over Noise', async () => {
    const ans = await local.pingNode(aId, { timeoutMs: 5000 });
    expect(ans).toMatchObject({ method: 'HEAD', body: Buffer.alloc(0) });
  });

  it.each([
    ['disco', { DERPRegionID: 900, DERPRegionCode: 'local' }],
    ['TSMP', {}],
    ['ICMP', {}],
  ])('%s: the node pings the peer and POSTs the PingResponse', async (types, extra) => {
    const ans = await local.pingNode(aId, { types, ip: bIp, timeoutMs: 8000 });
    expect(ans?.method).toBe('POST');
    const res = JSON.parse(ans!.body.toString()) as PingResponse;
    expect(res).toMatchObject({ Type: types, IP: bIp, NodeIP: bIp, NodeName: 'pb', ...extra });
    expect(res.Err).toBeUndefined();
    expect(res.LatencySeconds).toBeGreaterThan(0);
    expect(res.LatencySeconds).toBeLessThan(5);
  });

  it('its own address or one no peer has: an Err, as tailscaled says it', async () => {
    const self = a.tailscaleStatus().TailscaleIPs![0]!;
    const mine = JSON.parse((await local.pingNode(aId, { types: 'TSMP', ip: self }))!.body.toString());
    expect(mine).toEqual({ Type: 'TSMP', IP: self, Err: `${self} is local Tailscale IP`, IsLocalIP: true });
    const none = JSON.parse(
      (await local.pingNode(aId, { types: 'disco', ip: '100.64.99.99' }))!.body.toString(),
    );
    expect(none).toEqual({ Type: 'disco', IP: '100.64.99.99', Err: 'no matching peer' });
  });

  it('c2n: the request in Payload goes to /echo and the HTTP response comes back', async () => {
    const payload = Buffer.from('POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 11\r\n\r\nhello, node');
    const ans = await local.pingNode(aId, { types: 'c2n', payload, timeoutMs: 5000 });
    expect(ans?.method).toBe('POST');
    expect(ans!.body.toString()).toMatch(/^HTTP\/1\.1 200 OK\r\n[\s\S]*\r\n\r\nhello, node$/);
  });

  it('a node with no map stream cannot be pinged; an unanswered ping resolves undefined', async () => {
    await expect(local.pingNode(12345)).rejects.toThrow(/no map stream/);
    // A disco ping of a peer that is gone times out on the node, which then does not answer (doPingerPing).
    const tn = new Tailnet({
      hostname: 'gone',
      controlURL: local.controlURL,
      authKey: await local.authKey(),
      stateDir: tmp('qs-pingreq-g-'),
      endpoints: [],
    });
    await tn.up();
    const goneIp = tn.tailscaleStatus().TailscaleIPs![0]!;
    const deadline = Date.now() + 10_000;
    while (!a.status().peers.some((p) => p.hostname === 'gone') && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 50));
    await tn.close();
    expect(await local.pingNode(aId, { types: 'TSMP', ip: goneIp, timeoutMs: 7000 })).toBeUndefined();
  });
});
