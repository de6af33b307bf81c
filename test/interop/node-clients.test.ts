// Node's own client libraries over tn.net, against real servers behind a real tailscaled (userspace
// networking forwards inbound tailnet TCP to its host's loopback, where the test started them):
// PostgreSQL with pg, MariaDB with mysql2, Redis with ioredis, node:https with a CA the test made,
// ws, and gRPC (grpc-js has no socket hook: through the node's HTTP CONNECT proxy). No local
// forward anywhere; every byte checked by length and hash; then the failures a client must see
// as the error codes it already handles, and its pool recovering.
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import * as grpc from '@grpc/grpc-js';
import { AbstractConnector, Redis } from 'ioredis';
import mysql from 'mysql2/promise';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocket, WebSocketServer } from 'ws';
import type { TcpEndpoint } from '../../src/netstack/tcp/endpoint.js';
import { Tailnet } from '../../src/tailnet/tailnet.js';
import { makeTestCA, type TestCA } from '../tailnet/net/tls-ca.js';
import { Derper, freePort, Headscale, missingPeers, Tailscaled, tempDir } from './control-peers.js';
import { missingServers, startMariadb, startPostgres, startRedis } from './rig/db-servers.js';
import { Cleanup, waitFor } from './rig/exec.js';
import { skipUnless } from './rig/requirements.js';

const sha = (b: Uint8Array | string) => createHash('sha256').update(b).digest('hex');
const md5 = (s: string) => createHash('md5').update(s).digest('hex');
const TS = 'ts-db'; // tailscaled's MagicDNS short name

skipUnless([...missingPeers(['headscale', 'tailscaled', 'tailscale', 'derper']), ...missingServers()])(
  'Node client libraries over tn.net to real servers behind tailscaled',
  () => {
    const cleanup = new Cleanup();
    let ts: Tailscaled;
    let tn: Tailnet;
    let ca: TestCA;
    const port = { pg: 0, maria: 0, redis: 0, http: 0, https: 0, ws: 0, grpc: 0, closed: 0, denied: 0 };
    let maria: Awaited<ReturnType<typeof startMariadb>>;
    const bigFile = randomBytes(10 << 20);

    afterAll(async () => {
      expect((await cleanup.run()).map((e) => e.message)).toEqual([]);
    });

    beforeAll(async () => {
      port.pg = (await startPostgres(cleanup)).port;
      maria = await startMariadb(cleanup);
      port.maria = maria.port;
      port.redis = (await startRedis(cleanup)).port;
      ca = makeTestCA([TS, `${TS}.tailnet.test`]);
      port.http = await listenLocal(http.createServer((q, r) => r.end(q.url)));
      port.https = await listenLocal(
        https.createServer({ cert: ca.cert, key: ca.key }, (_q, r) => r.end(bigFile)),
      );
      // Listening, but the ACL below leaves it out.
      port.denied = await listenLocal(
        https.createServer({ cert: ca.cert, key: ca.key }, (_q, r) => r.end('no')),
      );
      const wsServer = new WebSocketServer({ host: '127.0.0.1', port: 0 });
      await once(wsServer, 'listening');
      wsServer.on('connection', (ws) => ws.on('message', (m: Buffer) => ws.send(m)));
      cleanup.add('ws server', () => new Promise((r) => wsServer.close(() => r(undefined))));
      port.ws = (wsServer.address() as AddressInfo).port;
      port.grpc = await startGrpc();
      port.closed = await freePort(); // nothing listens: tailscaled answers with a reset
      const allowed = [
        port.pg,
        port.maria,
        port.redis,
        port.http,
        port.https,
        port.ws,
        port.grpc,
        port.closed,
      ].join(',');
      const derper = await Derper.start(cleanup);
      const hs = await Headscale.start(cleanup, {
        derpPort: derper.port,
        // Our node may reach tailscaled on these ports only.
        policy: JSON.stringify({ acls: [{ action: 'accept', src: ['alice@'], dst: [`alice@:${allowed}`] }] }),
      });
      const key = await hs.createKey(await hs.createUser('alice'), { reusable: true });
      ts = await Tailscaled.start(cleanup, 'db', { persist: true });
      await ts.up(hs.url, key, TS);
      const udp = await freePort();
      tn = new Tailnet({
        hostname: 'quack',
        controlURL: hs.url,
        authKey: key,
        stateDir: await tempDir(cleanup, 'qs-tn-'),
        derpHttp: true,
        port: udp,
        endpoints: [`127.0.0.1:${udp}`],
        // Keepalive probes every second: a vanished peer is noticed in seconds (the test below); and
        // TIME_WAIT of 5 s, so that the 10,000-connection test sees every connection gone.
        tcp: { keepaliveIntervalMs: 1000, keepaliveProbes: 5, timeWaitMs: 5000 },
      });
      cleanup.add('close quack', () => tn.close());
      await tn.up();
      await waitFor(
        'quack sees ts-db',
        () => (tn.peers().some((p) => p.hostname === TS) ? true : undefined),
        30_000,
        100,
      );
    });

    async function listenLocal(server: http.Server): Promise<number> {
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
      cleanup.add('https server', () => {
        server.closeAllConnections();
        return new Promise((r) => server.close(() => r(undefined)));
      });
      return (server.address() as AddressInfo).port;
    }

    /** A gRPC echo service with no .proto: unary SHA-256 of the request, and a stream of chunks. */
    const service: grpc.ServiceDefinition = {
      Digest: {
        path: '/quack.Test/Digest',
        requestStream: false,
        responseStream: false,
        requestSerialize: (b: Buffer) => b,
        requestDeserialize: (b: Buffer) => b,
        responseSerialize: (b: Buffer) => b,
        responseDeserialize: (b: Buffer) => b,
      },
      Chunks: {
        path: '/quack.Test/Chunks',
        requestStream: false,
        responseStream: true,
        requestSerialize: (b: Buffer) => b,
        requestDeserialize: (b: Buffer) => b,
        responseSerialize: (b: Buffer) => b,
        responseDeserialize: (b: Buffer) => b,
      },
    };

    async function startGrpc(): Promise<number> {
      const server = new grpc.Server();
      server.addService(service, {
        Digest: (call: grpc.ServerUnaryCall<Buffer, Buffer>, cb: grpc.sendUnaryData<Buffer>) =>
          cb(null, Buffer.from(sha(call.request))),
        Chunks: (call: grpc.ServerWritableStream<Buffer, Buffer>) => {
          for (let i = 0; i < 64; i++) call.write(bigFile.subarray(i * 65536, (i + 1) * 65536));
          call.end();
        },
      });
      const p = await new Promise<number>((resolve, reject) =>
        server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, n) =>
          e ? reject(e) : resolve(n),
        ),
      );
      cleanup.add('grpc server', () => server.forceShutdown());
      return p;
    }

    const pgConfig = (extra: pg.ClientConfig = {}): pg.ClientConfig => ({
      host: TS,
      port: port.pg,
      user: 'postgres',
      database: 'postgres',
      // pg makes its socket and calls .connect(port, host) on it: an unconnected tailnet Socket.
      stream: () => new tn.net.Socket() as unknown as import('node:net').Socket,
      ...extra,
    });

    it('pg: a 200,000-row query checked by md5, a 20 MB value both ways, LISTEN/NOTIFY', async () => {
      const client = new pg.Client(pgConfig());
      await client.connect();
      const rows = await client.query<{ i: number; h: string }>(
        'SELECT i, md5(i::text) AS h FROM generate_series(1, 200000) AS i ORDER BY i',
      );
      expect(rows.rowCount).toBe(200_000);
      const local = md5(rows.rows.map((r) => `${r.i}:${r.h}`).join(','));
      const remote = await client.query<{ m: string }>(
        "SELECT md5(string_agg(i::text || ':' || md5(i::text), ',' ORDER BY i)) AS m FROM generate_series(1, 200000) AS i",
      );
      expect(local).toBe(remote.rows[0]!.m);

      const value = randomBytes(20 << 20);
      await client.query('CREATE TEMP TABLE blobs (b bytea)');
      await client.query('INSERT INTO blobs VALUES ($1)', [value]);
      const back = await client.query<{ b: Buffer; s: string; n: number }>(
        "SELECT b, encode(sha256(b), 'hex') AS s, length(b) AS n FROM blobs",
      );
      expect([back.rows[0]!.n, back.rows[0]!.s]).toEqual([value.length, sha(value)]);
      expect(sha(back.rows[0]!.b)).toBe(sha(value));

      const listener = new pg.Client(pgConfig());
      await listener.connect();
      await listener.query('LISTEN quack');
      const heard = once(listener, 'notification');
      await client.query("NOTIFY quack, 'over the tailnet'");
      const [note] = (await heard) as [pg.Notification];
      expect(note.payload).toBe('over the tailnet');
      await listener.end();
      await client.end();
    });

    it('mysql2: a 5 MB value and 10,000 rows, each checked by SHA-256 on both sides', async () => {
      const db = await mysql.createConnection({
        host: TS,
        port: port.maria,
        user: maria.user,
        password: maria.password,
        database: maria.database,
        // mysql2 takes a factory of connected (or connecting) streams.
        stream: () => tn.net.createConnection(port.maria, TS) as unknown as import('node:net').Socket,
      });
      await db.query('CREATE TABLE t (id INT PRIMARY KEY, v VARCHAR(64), b LONGBLOB)');
      const value = randomBytes(5 << 20);
      await db.query('INSERT INTO t VALUES (0, ?, ?)', ['blob', value]);
      const [[row]] = (await db.query('SELECT b, SHA2(b, 256) AS s FROM t WHERE id = 0')) as unknown as [
        { b: Buffer; s: string }[],
      ];
      expect([row!.s, sha(row!.b)]).toEqual([sha(value), sha(value)]);
      const values = Array.from({ length: 10_000 }, (_, i) => [i + 1, md5(String(i)), null]);
      await db.query('INSERT INTO t VALUES ?', [values]);
      const [rows] = (await db.query('SELECT id, v FROM t WHERE id > 0 ORDER BY id')) as unknown as [
        { id: number; v: string }[],
      ];
      expect(rows).toHaveLength(10_000);
      await db.query('SET SESSION group_concat_max_len = 4194304');
      const [[agg]] = (await db.query(
        "SELECT SHA2(GROUP_CONCAT(v ORDER BY id SEPARATOR ','), 256) AS s FROM t WHERE id > 0",
      )) as unknown as [{ s: string }[]];
      expect(agg!.s).toBe(sha(rows.map((r) => r.v).join(',')));
      await db.end();
    });

    it('ioredis: 10,000 pipelined commands and a 1 MB value', async () => {
      // ioredis takes a Connector class: ours hands it a tailnet socket.
      class TailnetConnector extends AbstractConnector {
        constructor(private readonly options: { host: string; port: number; disconnectTimeout?: number }) {
          super(options.disconnectTimeout ?? 2000);
        }
        connect(): ReturnType<AbstractConnector['connect']> {
          this.connecting = true;
          this.stream = tn.net.createConnection(this.options.port, this.options.host) as never;
          return Promise.resolve(this.stream!);
        }
      }
      const redis = new Redis({
        host: TS,
        port: port.redis,
        Connector: TailnetConnector as never,
        lazyConnect: true,
      });
      await redis.connect();
      const pipe = redis.pipeline();
      for (let i = 0; i < 5000; i++) pipe.set(`k${i}`, md5(String(i)));
      for (let i = 0; i < 5000; i++) pipe.get(`k${i}`);
      const results = (await pipe.exec())!;
      expect(results).toHaveLength(10_000);
      expect(results.every(([err]) => err === null)).toBe(true);
      expect(results.slice(5000).map(([, v]) => v)).toEqual(
        Array.from({ length: 5000 }, (_, i) => md5(String(i))),
      );
      const value = randomBytes(1 << 20);
      await redis.set('big', value);
      expect(sha((await redis.getBuffer('big'))!)).toBe(sha(value));
      await redis.quit();
    });

    it("node:https: 10 MB through tn.httpsAgent, the server's certificate verified against the test's CA", async () => {
      const body = await new Promise<Buffer>((resolve, reject) => {
        https
          .get(`https://${TS}:${port.https}/`, { agent: tn.httpsAgent({ ca: ca.ca }) }, (res) => {
            expect((res.socket as import('node:tls').TLSSocket).authorized).toBe(true);
            const chunks: Buffer[] = [];
            res.on('data', (d: Buffer) => chunks.push(d));
            res.on('end', () => resolve(Buffer.concat(chunks)));
          })
          .on('error', reject);
      });
      expect([body.length, sha(body)]).toEqual([bigFile.length, sha(bigFile)]);
    });

    it('ws: 1 MB echoed through createConnection', async () => {
      const payload = randomBytes(1 << 20);
      const ws = new WebSocket(`ws://${TS}:${port.ws}/`, {
        createConnection: tn.net.createConnection as never,
      });
      await once(ws, 'open');
      ws.send(payload);
      const [msg] = (await once(ws, 'message')) as [Buffer];
      expect([msg.length, sha(msg)]).toEqual([payload.length, sha(payload)]);
      ws.close();
    });

    it("gRPC (grpc-js): unary and a 4 MB server stream through the node's HTTP CONNECT proxy", async () => {
      const proxy = await tn.httpProxy();
      // grpc-js reads its proxy from the environment when a channel is made, and has no socket hook.
      const saved = process.env.grpc_proxy;
      process.env.grpc_proxy = proxy.url;
      const client = new grpc.Client(`${TS}:${port.grpc}`, grpc.credentials.createInsecure());
      if (saved === undefined) delete process.env.grpc_proxy;
      else process.env.grpc_proxy = saved;
      const raw = (b: Buffer) => b;
      const request = randomBytes(256 * 1024);
      const digest = await new Promise<Buffer>((resolve, reject) =>
        client.makeUnaryRequest(service.Digest!.path, raw, raw, request, (err, res) =>
          err ? reject(err) : resolve(res!),
        ),
      );
      expect(digest.toString()).toBe(sha(request));
      const chunks: Buffer[] = [];
      for await (const c of client.makeServerStreamRequest(service.Chunks!.path, raw, raw, Buffer.alloc(0))) {
        chunks.push(c as Buffer);
      }
      const got = Buffer.concat(chunks);
      expect([got.length, sha(got)]).toEqual([4 << 20, sha(bigFile.subarray(0, 4 << 20))]);
      expect(proxy.stats.tailnet).toBeGreaterThan(0);
      client.close();
    });

    it('10,000 short-lived connections through an http.Agent leave no socket, timer or listener behind', async () => {
      const agent = tn.httpAgent({ keepAlive: false, maxSockets: 16 });
      const get = (i: number) =>
        new Promise<string>((resolve, reject) => {
          http
            .get(`http://${TS}:${port.http}/${i}`, { agent }, (res) => {
              let body = '';
              res.setEncoding('utf8').on('data', (d: string) => (body += d));
              res.on('end', () => resolve(body));
            })
            .on('error', reject);
        });
      const resources = () => {
        const counts: Record<string, number> = {};
        for (const r of process.getActiveResourcesInfo()) counts[r] = (counts[r] ?? 0) + 1;
        return counts;
      };
      const tcp = (tn as unknown as { tcp: TcpEndpoint }).tcp;
      const drained = () =>
        waitFor('every connection gone', () => (tcp.connectionCount === 0 ? true : undefined), 30_000, 100);
      await get(0); // warm: the first dial and the parsers
      await drained();
      const before = { rss: process.memoryUsage().rss, resources: resources() };
      const t0 = Date.now();
      for (let i = 1; i <= 10_000; i += 50) {
        const batch = await Promise.all(Array.from({ length: 50 }, (_, j) => get(i + j)));
        expect(batch[49]).toBe(`/${i + 49}`);
      }
      const ms = Date.now() - t0;
      const peak = { rss: process.memoryUsage().rss, connections: tcp.connectionCount };
      await drained();
      const after = { rss: process.memoryUsage().rss, resources: resources() };
      console.log(
        `[10k] ${ms} ms (${Math.round(10_000_000 / ms)} connections/s); RSS ${(before.rss / 2 ** 20).toFixed(1)} MB before, ` +
          `${(peak.rss / 2 ** 20).toFixed(1)} MB at the end with ${peak.connections} connections in TIME_WAIT, ` +
          `${(after.rss / 2 ** 20).toFixed(1)} MB once they expired; handles ${JSON.stringify(before.resources)} → ` +
          JSON.stringify(after.resources),
      );
      // Nothing of ours is left: no handle or timer more than before (others' may have closed meanwhile).
      for (const [kind, n] of Object.entries(after.resources))
        expect(n, kind).toBeLessThanOrEqual(before.resources[kind] ?? 0);
      expect(Object.keys(agent.sockets).length + Object.keys(agent.freeSockets).length).toBe(0);
      expect(tn.listenerCount('close')).toBeLessThanOrEqual(1);
      expect(after.rss - before.rss).toBeLessThan(64 * 2 ** 20);
    });

    describe('failures, as the codes Node clients handle, and recovery', () => {
      const pgError = async (config: pg.ClientConfig) => {
        const c = new pg.Client(config);
        c.on('error', () => {});
        return c.connect().then(
          () => c.end().then(() => undefined),
          (e: NodeJS.ErrnoException) => e,
        );
      };

      it('a name not on the tailnet: ENOTFOUND; a port nobody listens on: ECONNREFUSED', async () => {
        expect((await pgError(pgConfig({ host: 'no-such-node' })))?.code).toBe('ENOTFOUND');
        expect((await pgError(pgConfig({ host: 'db.example.com' })))?.message).toMatch(
          /unknown tailnet host/,
        );
        expect((await pgError(pgConfig({ port: port.closed })))?.code).toBe('ECONNREFUSED');
      });

      it("a port the peer's packet filter denies: pg fails at once with EHOSTUNREACH (tailscaled's TSMP reject)", async () => {
        const t0 = Date.now();
        const err = await pgError(pgConfig({ port: port.denied }));
        expect(err?.code).toBe('EHOSTUNREACH');
        expect(err?.message).toMatch(/packet filter/);
        // A SYN's retransmission would come after 1 s: the rejection ended the dial before it.
        expect(Date.now() - t0).toBeLessThan(1000);
      });

      it('the peer goes away mid-query: the query fails with ECONNRESET or ETIMEDOUT, and the pool recovers', async () => {
        const pool = new pg.Pool(pgConfig({ keepAlive: true, keepAliveInitialDelayMillis: 500 }));
        pool.on('error', () => {}); // idle clients that die are the pool's business
        expect((await pool.query('SELECT 1 AS one')).rows[0].one).toBe(1);
        const t0 = Date.now();
        const slow = pool.query('SELECT pg_sleep(60)').then(
          () => undefined,
          (e: NodeJS.ErrnoException) => e,
        );
        await new Promise((r) => setTimeout(r, 1000));
        await ts.stop();
        await new Promise((r) => setTimeout(r, 2000));
        await ts.run(); // same state: the same node, which knows nothing of our connection
        const err = await slow;
        console.log(`[offline] the query failed with ${err?.code} after ${Date.now() - t0} ms`);
        expect(['ECONNRESET', 'ETIMEDOUT']).toContain(err?.code);
        expect(Date.now() - t0).toBeLessThan(30_000);
        const again = await waitFor(
          'the pool answers again',
          () =>
            pool.query('SELECT 2 AS two').then(
              (r) => r.rows[0].two as number,
              () => undefined,
            ),
          60_000,
          500,
        );
        expect(again).toBe(2);
        await pool.end();
      });
    });
  },
);
