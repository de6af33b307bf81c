/**
 * `quackscale up | status | ping | down`: a tailnet node in the foreground, in the shape of
 * tailscaled + tailscale. The running node answers a local API over a unix socket in its
 * state dir (0600), which the other subcommands talk to.
 */
import { chmod, readFile, rm } from 'node:fs/promises';
import http from 'node:http';
import { join } from 'node:path';
import { parseDerpMap } from '../derp/derpmap.js';
import { serveMetrics } from '../tailnet/metrics/listen.js';
import { runNetcheck } from '../tailnet/netcheck/netcheck.js';
import { formatNetcheck } from '../tailnet/netcheck/report.js';
import { Tailnet, type TailnetStatus } from '../tailnet/tailnet.js';
import { parseCommand } from './command.js';
import { cliLogger, UsageError, waitForSignal } from './log.js';
import { DOWN, NETCHECK, PING, STATUS, UP } from './spec/node.js';

const socketPath = (stateDir: string) => join(stateDir, 'quackscale.sock');

function port(text: string, what: string): number {
  const n = Number(text);
  if (!/^\d+$/.test(text) || n < 1 || n > 65535) throw new UsageError(`${what}: '${text}' is not a port`);
  return n;
}

/** `--crypto-workers N`: 0 (none, the default) to 64. */
function cryptoWorkers(text: string | undefined): number {
  const n = Number(text ?? '0');
  if (!/^\d+$/.test(text ?? '0') || n > 64) {
    throw new UsageError(`--crypto-workers: '${text}' is not a number of threads from 0 to 64`);
  }
  return n;
}

/** `quackscale up`: resolves with the exit status when the node is stopped. */
export async function up(argv: string[]): Promise<number> {
  const args = parseCommand(UP, argv);
  if (!args) return 0;
  const { values } = args;
  const stateDir = values['state-dir'];
  const serves = (values.serve ?? []).map((s) => {
    const [p, l] = s.split(':');
    return { port: port(p!, '--serve'), local: port(l ?? p!, '--serve') };
  });
  const forwards = (values.forward ?? []).map((f) => {
    const m = /^(\d+):(.+):(\d+)$/.exec(f);
    if (!m) throw new UsageError(`--forward wants LOCALPORT:HOST:PORT, got '${f}'`);
    return { local: port(m[1]!, '--forward'), host: m[2]!, port: port(m[3]!, '--forward') };
  });
  const log = cliLogger(values.verbose ?? false);
  const tn = new Tailnet({
    hostname: values.hostname,
    controlURL: values['control-url'],
    authKey: values.authkey,
    stateDir,
    ephemeral: values.ephemeral,
    derpHttp: values['derp-http'],
    ...(values['no-peer-mtu'] ? { peerMtu: false } : {}),
    cryptoWorkers: cryptoWorkers(values['crypto-workers']),
    port: values.port === undefined ? undefined : port(values.port, '--port'),
    endpoints: values.endpoint,
    acceptRoutes: values['accept-routes'],
    advertiseRoutes: values['advertise-routes']?.split(',').filter((r) => r !== ''),
    advertiseExitNode: values['advertise-exit-node'],
    exitNode: values['exit-node'],
    exitNodeAllowLANAccess: values['exit-node-allow-lan-access'],
    logger: log,
    onAuthURL: (url) => console.log(`To authenticate, visit:\n\n\t${url}\n`),
  });
  // Bound before joining, so that a taken port fails `up` at once, naming the address.
  const metricsAddr = values['metrics-listen'];
  const metrics =
    metricsAddr === undefined ? undefined : await serveMetrics(metricsAddr, () => tn.metrics().text);
  const st = await tn.up().catch(async (err: unknown) => {
    await metrics?.close();
    throw err;
  });
  console.log(`${st.self.name || st.self.hostname} ${st.self.addresses.join(' ')}`);
  if (metrics) console.log(`metrics: ${metrics.url}`);
  for (const s of serves) {
    await tn.serveLocal(s.port, s.local);
    log.info(`serving tailnet TCP ${s.port} -> 127.0.0.1:${s.local}`);
  }
  for (const f of forwards) {
    await tn.forward(f.local, f.host, f.port);
    log.info(`forwarding 127.0.0.1:${f.local} -> ${f.host}:${f.port}`);
  }
  if (values['http-proxy']) {
    const proxy = await tn.httpProxy({ port: port(values['http-proxy'], '--http-proxy') });
    console.log(`http proxy: ${proxy.url}`);
  }
  if (values.socks5) {
    // Tailnet hosts only; credentials in the URL, as for --http-proxy (curl -x / ALL_PROXY take it).
    const socks = await tn.socks5({ port: port(values.socks5, '--socks5') });
    console.log(`socks5 proxy: ${socks.url}`);
  }
  const api = await serveLocalApi(tn, stateDir);
  await Promise.race([waitForSignal(), new Promise((resolve) => api.once('down', resolve))]);
  log.info('shutting down');
  api.close();
  await metrics?.close();
  await rm(socketPath(stateDir), { force: true });
  await tn.close();
  return 0;
}

/** The local API: GET /status, GET /localapi/v0/status (tailscale's JSON), GET /derpmap, POST /ping?host=H[&type=disco|tsmp|icmp], POST /down. Only the state dir's owner can reach it. */
async function serveLocalApi(tn: Tailnet, stateDir: string): Promise<http.Server> {
  const path = socketPath(stateDir);
  await rm(path, { force: true });
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://local');
    const reply = (code: number, body: unknown) => {
      res.writeHead(code, { 'Content-Type': 'application/json' }).end(JSON.stringify(body));
    };
    if (req.method === 'GET' && url.pathname === '/status') return reply(200, tn.status());
    // tailscaled's LocalAPI path for the same ipnstate.Status JSON.
    if (req.method === 'GET' && url.pathname === '/localapi/v0/status')
      return reply(200, tn.tailscaleStatus());
    if (req.method === 'POST' && url.pathname === '/ping') {
      const type = url.searchParams.get('type') ?? 'disco';
      if (type !== 'disco' && type !== 'tsmp' && type !== 'icmp')
        return reply(400, { error: `ping type '${type}'` });
      tn.ping(url.searchParams.get('host') ?? '', { type }).then(
        (r) => reply(200, r),
        (err: Error) => reply(502, { error: err.message }),
      );
      return;
    }
    if (req.method === 'GET' && url.pathname === '/derpmap') return reply(200, tn.derpMap ?? null);
    if (req.method === 'POST' && url.pathname === '/down') {
      reply(200, { ok: true });
      server.emit('down');
      return;
    }
    reply(404, { error: 'no such local API endpoint' });
  });
  await new Promise<void>((resolve) => server.listen(path, resolve));
  await chmod(path, 0o600);
  return server;
}

function call<T>(stateDir: string, method: string, path: string): Promise<T> {
  return new Promise((resolve, reject) => {
    const req = http.request({ socketPath: socketPath(stateDir), method, path }, (res) => {
      let body = '';
      res.on('data', (d) => (body += d));
      res.on('end', () => {
        const parsed = JSON.parse(body) as T & { error?: string };
        if ((res.statusCode ?? 500) >= 400) reject(new Error(parsed.error ?? `HTTP ${res.statusCode}`));
        else resolve(parsed);
      });
    });
    req.on('error', (err: NodeJS.ErrnoException) =>
      reject(
        err.code === 'ENOENT' || err.code === 'ECONNREFUSED'
          ? new Error(`no node running with state dir ${stateDir} (start one with quackscale up)`)
          : err,
      ),
    );
    req.end();
  });
}

/** `quackscale status`. */
export async function status(argv: string[]): Promise<number> {
  const args = parseCommand(STATUS, argv);
  if (!args) return 0;
  const { values } = args;
  if (values.json) {
    console.log(JSON.stringify(await call(values['state-dir'], 'GET', '/localapi/v0/status'), null, 2));
    return 0;
  }
  const st = await call<TailnetStatus>(values['state-dir'], 'GET', '/status');
  const self = st.self;
  const advertising = self.advertisedRoutes.length > 0 ? `advertises ${self.advertisedRoutes.join(' ')}` : '';
  const rows = [
    [self.addresses[0] ?? '-', self.hostname, 'self', `derp ${self.derpRegion ?? '-'}`, advertising],
  ];
  for (const p of st.peers) {
    // The routes it serves us, and its exit node role, as tailscale status shows them.
    const exit = p.exitNode ? 'exit node' : p.exitNodeOption ? 'offers exit node' : '';
    const routes = [p.routes.length > 0 ? `routes ${p.routes.join(' ')}` : '', exit]
      .filter(Boolean)
      .join('; ');
    rows.push([p.addresses[0] ?? '-', p.hostname, p.online === false ? 'offline' : 'online', p.path, routes]);
  }
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  for (const r of rows)
    console.log(
      r
        .map((c, i) => c.padEnd(widths[i]!))
        .join('  ')
        .trimEnd(),
    );
  return 0;
}

/** `quackscale ping`: exit 0 if any pong came. */
export async function ping(argv: string[]): Promise<number> {
  const args = parseCommand(PING, argv);
  if (!args) return 0;
  const { values, positionals } = args;
  const dir = values['state-dir'];
  if (positionals.length !== 1) throw new UsageError('ping takes one HOST');
  const host = positionals[0]!;
  const count = values.count ? port(values.count, '-c') : 1;
  if (values.tsmp && values.icmp) throw new UsageError('ping takes --tsmp or --icmp, not both');
  const type = values.tsmp ? 'tsmp' : values.icmp ? 'icmp' : 'disco';
  let ok = 0;
  for (let i = 0; i < count; i++) {
    try {
      const r = await call<{ node: string; ip: string; via: string; latencyMs: number }>(
        dir,
        'POST',
        `/ping?host=${encodeURIComponent(host)}&type=${type}`,
      );
      console.log(`pong from ${r.node} (${r.ip}) via ${r.via} in ${Math.round(r.latencyMs)}ms`);
      ok++;
    } catch (err) {
      console.log(`no reply: ${(err as Error).message}`);
    }
    if (i + 1 < count) await new Promise((r) => setTimeout(r, 1000));
  }
  return ok > 0 ? 0 : 1;
}

/** `quackscale down`. */
export async function down(argv: string[]): Promise<number> {
  const args = parseCommand(DOWN, argv);
  if (!args) return 0;
  await call(args.values['state-dir'], 'POST', '/down');
  return 0;
}

/** `quackscale netcheck`: run in this process, on the DERP map of the running node or of a file. */
export async function netcheck(argv: string[]): Promise<number> {
  const args = parseCommand(NETCHECK, argv);
  if (!args) return 0;
  const { values } = args;
  const dir = values['state-dir'];
  const file = values['derp-map'];
  if ((dir === undefined) === (file === undefined))
    throw new UsageError('netcheck takes --state-dir or --derp-map');
  const raw =
    file !== undefined ? await readFile(file, 'utf8') : await call<unknown>(dir!, 'GET', '/derpmap');
  if (raw === null) throw new Error(`the node of ${dir} has no DERP map yet`);
  const map = parseDerpMap(raw);
  const report = await runNetcheck(map);
  process.stdout.write(values.json ? `${JSON.stringify(report, null, '\t')}\n` : formatNetcheck(report, map));
  return 0;
}
