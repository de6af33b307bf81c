// Helpers shared by the SQL functions: table functions whose rows are computed at bind time,
// the temporary macros that give them an optional first positional argument, and parameter
// readers with range checks.
import {
  type DuckDBConnection,
  DuckDBTableFunction,
  type DuckDBTableFunctionBindInfo,
  type DuckDBType,
  type DuckDBValue,
} from '@duckdb/node-api';

/** One result column: its name, DuckDB type, and how to read it from a row object. */
export interface Column<R> {
  name: string;
  type: DuckDBType;
  value(row: R): DuckDBValue;
}

/** DuckDB's standard vector size: the most rows one output chunk holds. */
const CHUNK = 2048;

/**
 * Registers a table function whose rows are computed at bind time (the only callback that can
 * report an error before any output is promised, and where the SQL thread may block on the
 * node). `label` names it in error texts (default: `name`); `positional` are required
 * parameters before the named ones.
 */
export function registerRows<R>(
  connection: DuckDBConnection,
  name: string,
  columns: readonly Column<R>[],
  named: Record<string, DuckDBType>,
  compute: (bind: DuckDBTableFunctionBindInfo) => R[],
  label = name,
  positional: readonly DuckDBType[] = [],
): void {
  connection.registerTableFunction(
    DuckDBTableFunction.create({
      name,
      parameterTypes: positional,
      namedParameterTypes: named,
      bindFunction: (bind) => {
        try {
          const rows = compute(bind);
          for (const c of columns) bind.addResultColumn(c.name, c.type);
          bind.setBindData({ columns: columns.map((c) => rows.map((r) => c.value(r))), count: rows.length });
          bind.setCardinality(rows.length, true);
        } catch (err) {
          bind.setError(`${label}: ${err instanceof Error ? err.message : String(err)}`);
        }
      },
      initFunction: (init) => init.setInitData({ next: 0 }),
      mainFunction: (info, out) => {
        const scan = info.initData as { next: number };
        const { columns: values, count } = info.bindData as { columns: DuckDBValue[][]; count: number };
        const n = Math.min(CHUNK, count - scan.next);
        out.rowCount = n;
        if (n === 0) return;
        for (const [i, col] of values.entries()) out.setColumnValues(i, col.slice(scan.next, scan.next + n));
        scan.next += n;
      },
    }),
  );
}

/** {@link registerRows} for a function that returns exactly one row. */
export function registerOneRow<R>(
  connection: DuckDBConnection,
  name: string,
  columns: readonly Column<R>[],
  named: Record<string, DuckDBType>,
  compute: (bind: DuckDBTableFunctionBindInfo) => R,
  label = name,
): void {
  registerRows(connection, name, columns, named, (bind) => [compute(bind)], label);
}

/**
 * DuckDB's C API registers one signature per table function name, with no optional positional
 * parameters, yet `tailscale_up('name')` and `tailscale_up()` must both work. The function
 * itself is registered under its own name with named parameters only: C API functions live in
 * the system catalog, so every connection of the instance sees them, including the sessions the
 * quack extension opens for remote clients. On the installing connection a temporary table
 * macro of the same name (temporary objects are found first) whose parameters all default to
 * NULL adds the positional form: it takes the first one positionally or by name, forwards them
 * all by name to the function, and still rejects unknown names, listing the valid ones
 * ("Candidate macros: tailscale_up(hostname := NULL, …)"). A macro cannot be shared instead:
 * DuckDB refuses new entries in the system catalog, and a macro in the database would be
 * written into the user's file.
 */
export function macroSql(name: string, params: readonly string[]): string {
  return (
    `CREATE OR REPLACE TEMP MACRO ${name}(${params.map((p) => `${p} := NULL`).join(', ')}) AS TABLE ` +
    `FROM system.main.${name}(${params.map((p) => `${p} => ${p}`).join(', ')})`
  );
}

/**
 * Registers `compute` as the table function `name` with the parameters `named`, visible to every
 * connection by name, and on `connection` also with the first one positional (see {@link macroSql}).
 */
export async function registerWithMacro<R>(
  connection: DuckDBConnection,
  name: string,
  columns: readonly Column<R>[],
  named: Record<string, DuckDBType>,
  compute: (bind: DuckDBTableFunctionBindInfo) => R[],
): Promise<void> {
  registerRows(connection, name, columns, named, compute);
  await connection.run(macroSql(name, Object.keys(named)));
}

export function stringArg(bind: DuckDBTableFunctionBindInfo, name: string): string | undefined {
  const v = bind.getNamedParameter(name);
  return v === null ? undefined : String(v);
}

export function boolArg(bind: DuckDBTableFunctionBindInfo, name: string, dflt: boolean): boolean {
  const v = bind.getNamedParameter(name);
  return v === null ? dflt : v === true;
}

/** A required, non-empty VARCHAR parameter. */
export function requiredString(bind: DuckDBTableFunctionBindInfo, name: string, example: string): string {
  const v = stringArg(bind, name)?.trim();
  if (!v) throw new Error(`${name} is required, e.g. ${example}`);
  return v;
}

/** An integer parameter in [min, max], `dflt` when absent or NULL. */
export function intArg(
  bind: DuckDBTableFunctionBindInfo,
  name: string,
  dflt: number,
  min: number,
  max: number,
): number {
  const v = bind.getNamedParameter(name);
  if (v === null) return dflt;
  const n = typeof v === 'bigint' || typeof v === 'number' ? Number(v) : Number.NaN;
  if (!Number.isInteger(n) || n < min || n > max) {
    throw new Error(`${name} must be between ${min} and ${max} (got ${String(v)})`);
  }
  return n;
}

/** A TCP port parameter: 1–65535, or 0–65535 when 0 means "any free port". */
export function portArg(
  bind: DuckDBTableFunctionBindInfo,
  name: string,
  dflt: number,
  allowZero = false,
): number {
  return intArg(bind, name, dflt, allowZero ? 0 : 1, 65535);
}
