// A DuckDB process driven over IPC by duck-process.ts: one in-memory database with the
// quackscale functions installed (QS_SQL_MODULE, the compiled package; QS_INSTALL, JSON options
// for installQuackscale), running the SQL it is sent and answering with the rows and the time
// taken. A separate process because the SQL thread blocks while the tailnet node works: in the
// test's own process that would stall the peers the test runs. Plain JS: it runs under bare Node.
import { DuckDBInstance } from '@duckdb/node-api';

const mod = process.env.QS_SQL_MODULE;
if (!mod) throw new Error('missing QS_SQL_MODULE');
const { installQuackscale } = await import(mod);

const instance = await DuckDBInstance.create(':memory:', {
  // Extensions are loaded by path from the test's cache; nothing is fetched from the network.
  autoinstall_known_extensions: 'false',
  autoload_known_extensions: 'false',
});
const conn = await instance.connect();
await installQuackscale(conn, { instance, ...JSON.parse(process.env.QS_INSTALL ?? '{}') });

/** Runs `sql` `repeat` times (timed together, so IPC does not count); rows of the last run. */
async function run(sql, repeat) {
  let rows = [];
  const t0 = performance.now();
  for (let i = 0; i < repeat; i++) rows = (await conn.runAndReadAll(sql)).getRowObjectsJson();
  return { rows, ms: performance.now() - t0 };
}

process.on('message', (msg) => {
  if (msg.op === 'exit') {
    conn.closeSync();
    instance.closeSync();
    // Once the channel is gone only the node (if still up) could keep this process alive.
    process.disconnect();
    return;
  }
  run(msg.sql, msg.repeat ?? 1).then(
    (res) => process.send({ id: msg.id, ...res }),
    (err) => process.send({ id: msg.id, error: err instanceof Error ? err.message : String(err) }),
  );
});
process.send({ ready: true });
