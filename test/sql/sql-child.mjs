// A one-shot DuckDB script, as a user would write it, run by read-csv.test.ts in its own
// process: joins the tailnet from SQL, reads a peer's CSV through httpfs, and leaves. Plain
// JS because it runs under bare Node against the compiled package (QS_SQL_MODULE).
import { DuckDBInstance } from '@duckdb/node-api';

const env = (k) => {
  const v = process.env[k];
  if (!v) throw new Error(`missing ${k}`);
  return v;
};
const { installQuackscale } = await import(env('QS_SQL_MODULE'));
const lit = (s) => `'${s.replace(/'/g, "''")}'`;

const instance = await DuckDBInstance.create(':memory:', {
  autoinstall_known_extensions: 'false',
  autoload_known_extensions: 'false',
});
const c = await instance.connect();
await installQuackscale(c, { instance, endpoints: [] });
const rows = async (sql) => (await c.runAndReadAll(sql)).getRowObjectsJson();
const proxy = async () =>
  (await rows(`SELECT current_setting('http_proxy') AS p, current_setting('http_proxy_username') AS u`))[0];

const out = {};
// The user's own settings, which up replaces and down must put back.
await c.run(`SET GLOBAL http_proxy_username = 'users-own'`);
out.statusBefore = (await rows('FROM tailscale_status()'))[0];
const up = (extra) =>
  rows(
    `CALL tailscale_up(${lit(env('QS_HOSTNAME'))}, authkey => ${lit(env('QS_AUTHKEY'))}, ` +
      `control_url => ${lit(env('QS_CONTROL_URL'))}, state_dir => ${lit(env('QS_STATE_DIR'))}${extra})`,
  );
out.up = (await up(', ephemeral => true'))[0];
out.proxyUp = await proxy();
out.statusUp = (await rows('FROM tailscale_status()'))[0];
await c.run(`LOAD ${lit(env('QS_HTTPFS'))}`);
const read = async (url) =>
  (await rows(`SELECT count(*) AS n, sum(x) AS total FROM read_csv(${lit(url)})`))[0];
out.csv = await read(`http://${env('QS_PEER')}.tailnet.internal:8000/sales.csv`);
out.csvShortName = await read(`http://${env('QS_PEER')}:8000/sales.csv`);
out.down = (await rows('CALL tailscale_down()'))[0];
out.proxyDown = await proxy();
out.statusDown = (await rows('FROM tailscale_status()'))[0];
// Up again in the same process (a fresh worker), this time leaving DuckDB's settings alone.
out.upNoRoute = (await up(', http_route => false'))[0];
out.proxyNoRoute = await proxy();
out.down2 = (await rows('CALL tailscale_down()'))[0];
c.closeSync();
instance.closeSync();
process.stdout.write(`${JSON.stringify(out)}\n`);
// No process.exit: the test checks that nothing keeps the process alive after tailscale_down.
