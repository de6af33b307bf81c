// "Any Node library over the tailnet" in README.md and docs/GUIDE.md: every snippet of the
// section, run as written.
// Each is compiled as it stands (esbuild, types stripped) and imported as a module with `tn` in
// scope; what it prints with console.log must equal its `// comment` outputs, in order. The names
// the snippets use are nodes of an in-process tailnet (our control server): `db` and `cache`
// serve real PostgreSQL, MariaDB and Redis from Debian's packages, `api`, `chat` and `grpc`
// serve https (with a certificate from a CA the test made), ws and grpc-js servers.
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { transform } from 'esbuild';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { WebSocketServer } from 'ws';
import { type LocalTailnet, startLocalTailnet } from '../../src/tailnet/local.js';
import { Tailnet } from '../../src/tailnet/tailnet.js';
import { makeTestCA } from '../tailnet/net/tls-ca.js';
import { missingServers, startMariadb, startPostgres, startRedis } from './rig/db-servers.js';
import { Cleanup } from './rig/exec.js';
import { skipUnless } from './rig/requirements.js';

const ROOT = resolve(__dirname, '../..');
const SECTION = '## Any Node library over the tailnet';

/**
 * The ```ts blocks of the section, in README.md (a taste) and docs/GUIDE.md (every library),
 * each with the outputs its `console.log(…); // out` lines promise.
 */
function snippets(): { code: string; expected: string[] }[] {
  return ['README.md', 'docs/GUIDE.md'].flatMap((file) => {
    const text = readFileSync(join(ROOT, file), 'utf8');
    const start = text.indexOf(SECTION);
    if (start < 0) throw new Error(`${file} has no section ${SECTION}`);
    const end = text.indexOf('\n## ', start + SECTION.length);
    const body = text.slice(start, end < 0 ? undefined : end);
    return [...body.matchAll(/```ts\n([\s\S]*?)```/g)].map(([, code]) => ({
      code: code!,
      expected: [...code!.matchAll(/console\.log\(.*\); \/\/ (.+)$/gm)].map(([, out]) => out!.trim()),
    }));
  });
}

skipUnless(missingServers())('README: Node libraries over the tailnet, each snippet run as written', () => {
  const cleanup = new Cleanup();
  let local: LocalTailnet;
  let tn: Tailnet;
  const dir = mkdtempSync(join(tmpdir(), 'qs-readme-'));
  // Inside the project, so that the snippets' imports resolve from its node_modules.
  const moduleDir = join(ROOT, 'node_modules/.cache/qs-readme-snippets');

  afterAll(async () => {
    expect((await cleanup.run()).map((e) => e.message)).toEqual([]);
    rmSync(dir, { recursive: true, force: true });
    rmSync(moduleDir, { recursive: true, force: true });
  });

  beforeAll(async () => {
    local = await startLocalTailnet({ stateDir: join(dir, 'control') });
    cleanup.add('local tailnet', () => local.close());
    const node = async (hostname: string) => {
      const n = new Tailnet({
        hostname,
        controlURL: local.controlURL,
        authKey: await local.authKey(),
        stateDir: join(dir, hostname),
        endpoints: ['127.0.0.1:0'],
      });
      cleanup.add(`close ${hostname}`, () => n.close());
      await n.up();
      return n;
    };
    const listen = async (server: http.Server | https.Server) => {
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
      cleanup.add('server', () => {
        server.closeAllConnections();
        return new Promise((r) => server.close(() => r(undefined)));
      });
      return (server.address() as AddressInfo).port;
    };
    const ca = makeTestCA(['api', 'api.tailnet.internal']);
    writeFileSync(join(dir, 'ca.pem'), ca.ca);
    const db = await node('db');
    await db.serveLocal(5432, (await startPostgres(cleanup)).port);
    await db.serveLocal(3306, (await startMariadb(cleanup)).port);
    await (await node('cache')).serveLocal(6379, (await startRedis(cleanup)).port);
    const api = await node('api');
    await api.serveLocal(
      443,
      await listen(https.createServer({ cert: ca.cert, key: ca.key }, (_q, r) => r.end('ok'))),
    );
    await api.serveLocal(8080, await listen(http.createServer((_q, r) => r.end('ok'))));
    const wsHttp = http.createServer();
    new WebSocketServer({ server: wsHttp }).on('connection', (ws) =>
      ws.on('message', (m: Buffer) => ws.send(m)),
    );
    await (await node('chat')).serveLocal(8080, await listen(wsHttp));
    const grpcServer = new grpc.Server();
    const grpcPort = await new Promise<number>((ok, fail) =>
      grpcServer.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) =>
        e ? fail(e) : ok(p),
      ),
    );
    cleanup.add('grpc', () => grpcServer.forceShutdown());
    await (await node('grpc')).serveLocal(50051, grpcPort);
    tn = await node('app');
  });

  it('finds the section and its snippets', () => {
    const all = snippets();
    expect(all.length).toBeGreaterThanOrEqual(8);
    for (const s of all) expect(s.expected.length, s.code).toBeGreaterThan(0);
  });

  for (const [i, s] of snippets().entries()) {
    const title = s.code.match(/from '(?!node:)([^']+)'/)?.[1] ?? 'node built-ins';
    it(`snippet ${i + 1} (${title}) prints ${JSON.stringify(s.expected)}`, async () => {
      mkdirSync(moduleDir, { recursive: true });
      const file = join(moduleDir, `snippet-${i}.mjs`);
      writeFileSync(file, (await transform(s.code, { loader: 'ts', format: 'esm', target: 'es2022' })).code);
      const printed: string[] = [];
      const log = console.log;
      const cwd = process.cwd();
      const env = { ...process.env };
      (globalThis as { tn?: Tailnet }).tn = tn;
      console.log = (...args: unknown[]) => printed.push(args.map(String).join(' '));
      process.chdir(dir); // the snippets read ca.pem from their working directory
      try {
        await import(file);
      } finally {
        console.log = log;
        process.chdir(cwd);
        process.env = env;
      }
      expect(printed).toEqual(s.expected);
    });
  }
});
