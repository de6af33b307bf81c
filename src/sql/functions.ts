// The lifecycle table functions of sql-surface.md: tailscale_up, tailscale_status and
// tailscale_down, with the original's names, parameters, result columns and defaults.
import { homedir } from 'node:os';
import { join } from 'node:path';
import {
  BOOLEAN,
  type DuckDBConnection,
  DuckDBTableFunction,
  type DuckDBTableFunctionBindInfo,
  type DuckDBType,
  type DuckDBValue,
  LIST,
  listValue,
  VARCHAR,
} from '@duckdb/node-api';
import type { NodeState, Reply, UpRequest } from './protocol.js';

/** One result column: its name, DuckDB type, and how to read it from a row object. */
interface Column<R> {
  name: string;
  type: DuckDBType;
  value(row: R): DuckDBValue;
}

/** The SQL-thread side of the node, as the functions need it (see NodeSession in index.ts). */
export interface NodeSessionLike {
  up(req: Omit<UpRequest, 'op'>): NodeState;
  status(): NodeState;
  down(): void;
}

/** Settings the functions take from installQuackscale rather than from SQL. */
export interface FunctionDefaults {
  controlURL: string | undefined;
  stateDir: string | undefined;
  derpHttp: boolean | undefined;
  endpoints: string[] | undefined;
}

const stateColumns: Column<NodeState>[] = [
  { name: 'running', type: BOOLEAN, value: (s) => s.running },
  { name: 'hostname', type: VARCHAR, value: (s) => s.hostname },
  { name: 'tailnet_ips', type: LIST(VARCHAR), value: (s) => listValue(s.tailnetIps) },
];

/**
 * Registers a table function that returns exactly one row, computed at bind time (the only
 * callback that can report an error before any output is promised). `label` names it in
 * error texts when it is registered under an internal name.
 */
function registerOneRow<R>(
  connection: DuckDBConnection,
  name: string,
  columns: Column<R>[],
  named: Record<string, DuckDBType>,
  compute: (bind: DuckDBTableFunctionBindInfo) => R,
  label = name,
): void {
  connection.registerTableFunction(
    DuckDBTableFunction.create({
      name,
      namedParameterTypes: named,
      bindFunction: (bind) => {
        try {
          const row = compute(bind);
          for (const c of columns) bind.addResultColumn(c.name, c.type);
          bind.setBindData({ values: columns.map((c) => c.value(row)) });
        } catch (err) {
          bind.setError(`${label}: ${err instanceof Error ? err.message : String(err)}`);
        }
      },
      initFunction: (init) => init.setInitData({ done: false }),
      mainFunction: (info, out) => {
        const scan = info.initData as { done: boolean };
        if (scan.done) {
          out.rowCount = 0;
          return;
        }
        scan.done = true;
        const { values } = info.bindData as { values: DuckDBValue[] };
        out.rowCount = 1;
        for (const [i, v] of values.entries()) out.setColumnValues(i, [v]);
      },
    }),
  );
}

function stringArg(bind: DuckDBTableFunctionBindInfo, name: string): string | undefined {
  const v = bind.getNamedParameter(name);
  return v === null ? undefined : String(v);
}

function boolArg(bind: DuckDBTableFunctionBindInfo, name: string, dflt: boolean): boolean {
  const v = bind.getNamedParameter(name);
  return v === null ? dflt : v === true;
}

/** `~/x` as the shell would expand it: the spec's examples write state dirs that way. */
function expandHome(p: string): string {
  return p === '~' || p.startsWith('~/') ? join(homedir(), p.slice(1)) : p;
}

/** Where a node keeps its keys when `state_dir` is not given: one directory per hostname. */
export function defaultStateDir(hostname: string | undefined): string {
  return join(homedir(), '.local', 'share', 'quackscale', hostname ?? 'default');
}

/** tailscale_up's parameters, in the order the macro takes them (hostname may be positional). */
const UP_PARAMS = {
  hostname: VARCHAR,
  authkey: VARCHAR,
  control_url: VARCHAR,
  state_dir: VARCHAR,
  ephemeral: BOOLEAN,
  http_route: BOOLEAN,
} as const;

/** The internal table function behind the `tailscale_up` macro. */
const UP_FUNCTION = '__quackscale_tailscale_up';

/**
 * DuckDB's C API registers one signature per table function name, with no optional positional
 * parameters, yet `tailscale_up('name')` and `tailscale_up()` must both work. A temporary
 * table macro whose parameters all default to NULL takes the first one positionally or by
 * name, forwards them all by name, and still rejects unknown names, listing the valid ones.
 */
export function upMacroSql(): string {
  const params = Object.keys(UP_PARAMS);
  return (
    `CREATE OR REPLACE TEMP MACRO tailscale_up(${params.map((p) => `${p} := NULL`).join(', ')}) AS TABLE ` +
    `FROM ${UP_FUNCTION}(${params.map((p) => `${p} => ${p}`).join(', ')})`
  );
}

/**
 * Registers tailscale_up, tailscale_status and tailscale_down on `connection`; run
 * {@link upMacroSql} on it afterwards to define `tailscale_up` itself.
 */
export function registerLifecycle(
  connection: DuckDBConnection,
  session: NodeSessionLike,
  defaults: FunctionDefaults,
): void {
  registerOneRow(
    connection,
    UP_FUNCTION,
    stateColumns,
    UP_PARAMS,
    (bind) => {
      const hostname = stringArg(bind, 'hostname');
      const stateDir = stringArg(bind, 'state_dir') ?? defaults.stateDir ?? defaultStateDir(hostname);
      return session.up({
        hostname,
        authKey: stringArg(bind, 'authkey') ?? (process.env.TS_AUTHKEY || undefined),
        controlURL: stringArg(bind, 'control_url') ?? defaults.controlURL,
        stateDir: expandHome(stateDir),
        ephemeral: boolArg(bind, 'ephemeral', false),
        httpRoute: boolArg(bind, 'http_route', true),
        derpHttp: defaults.derpHttp,
        endpoints: defaults.endpoints,
      });
    },
    'tailscale_up',
  );

  registerOneRow(
    connection,
    'tailscale_status',
    [{ name: 'libtailscale_linked', type: BOOLEAN, value: () => true }, ...stateColumns],
    {},
    () => session.status(),
  );

  registerOneRow(
    connection,
    'tailscale_down',
    [{ name: 'shutdown_ok', type: BOOLEAN, value: () => true }],
    {},
    () => session.down(),
  );
}

/** The state in a reply, or its error as an exception (caught and reported by the bind). */
export function unwrap(reply: Reply): NodeState {
  if (!reply.ok) throw new Error(reply.error);
  return reply.state;
}
