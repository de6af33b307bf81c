/**
 * A @duckdb/node-api result as the text DuckDB's CLI shows: each value as DuckDB's own cast to
 * VARCHAR prints it (doubles in shortest round-trip form with Python-style exponents, strings
 * inside lists and structs quoted only where DuckDB quotes them), types by the names
 * BoxRenderer::RenderType uses (`int32`, `varchar[]`, `decimal(18,3)`).
 */
import {
  type DuckDBArrayValue,
  type DuckDBListType,
  type DuckDBListValue,
  type DuckDBMapValue,
  type DuckDBResultReader,
  type DuckDBStructValue,
  type DuckDBType,
  DuckDBTypeId,
  type DuckDBUnionValue,
  type DuckDBValue,
  type Json,
} from '@duckdb/node-api';
import type { TextTable } from './sql-render.js';

const INT_NAMES: Partial<Record<DuckDBTypeId, string>> = {
  [DuckDBTypeId.TINYINT]: 'int8',
  [DuckDBTypeId.SMALLINT]: 'int16',
  [DuckDBTypeId.INTEGER]: 'int32',
  [DuckDBTypeId.BIGINT]: 'int64',
  [DuckDBTypeId.HUGEINT]: 'int128',
  [DuckDBTypeId.UTINYINT]: 'uint8',
  [DuckDBTypeId.USMALLINT]: 'uint16',
  [DuckDBTypeId.UINTEGER]: 'uint32',
  [DuckDBTypeId.UBIGINT]: 'uint64',
  [DuckDBTypeId.UHUGEINT]: 'uint128',
};

const NUMERIC = new Set<DuckDBTypeId>([
  ...(Object.keys(INT_NAMES).map(Number) as DuckDBTypeId[]),
  DuckDBTypeId.DECIMAL,
  DuckDBTypeId.FLOAT,
  DuckDBTypeId.DOUBLE,
]);

/** The type's name in a duckbox header (BoxRenderer::RenderType). */
export function typeName(type: DuckDBType): string {
  const short = INT_NAMES[type.typeId];
  if (short && !type.alias) return short;
  if (type.typeId === DuckDBTypeId.LIST && !type.alias)
    return `${typeName((type as DuckDBListType).valueType)}[]`;
  // node-api quotes struct field names ("x" INTEGER); DuckDB's ToString leaves plain ones bare.
  return String(type)
    .replace(/"([A-Za-z_][A-Za-z0-9_]*)"/g, '$1')
    .toLowerCase();
}

/**
 * A double as DuckDB prints it: the shortest digits that read back to the same value, in fixed
 * notation for exponents -4 to 15 (with `.0` on whole numbers), else `1e+16`-style.
 */
export function formatDouble(x: number): string {
  if (Number.isNaN(x)) return 'nan';
  if (!Number.isFinite(x)) return x > 0 ? 'inf' : '-inf';
  if (x === 0) return Object.is(x, -0) ? '-0.0' : '0.0';
  // toExponential() without an argument gives the shortest round-trip digits (ECMA-262 §21.1.3.2).
  const m = /^(-?)(\d)(?:\.(\d+))?e([+-]\d+)$/.exec(x.toExponential());
  if (!m) return String(x);
  const [, sign, first, rest = '', expText] = m;
  const exp = Number(expText);
  const digits = `${first}${rest}`;
  if (exp < -4 || exp >= 16) {
    const mantissa = rest ? `${first}.${rest}` : first;
    const e = Math.abs(exp).toString().padStart(2, '0');
    return `${sign}${mantissa}e${exp < 0 ? '-' : '+'}${e}`;
  }
  if (exp < 0) return `${sign}0.${'0'.repeat(-exp - 1)}${digits}`;
  const whole = digits.slice(0, exp + 1).padEnd(exp + 1, '0');
  const frac = digits.slice(exp + 1);
  return `${sign}${whole}.${frac || '0'}`;
}

/** A FLOAT (single precision, widened to a JS double by node-api) with its own shortest digits. */
export function formatFloat(x: number): string {
  if (!Number.isFinite(x) || x === 0) return formatDouble(x);
  for (let p = 1; p <= 9; p++) {
    const candidate = Number(x.toPrecision(p));
    if (Math.fround(candidate) === x) return formatDouble(candidate);
  }
  return formatDouble(x);
}

/** A string inside a list, struct or map: quoted (with `\'`) only where DuckDB's cast quotes it. */
export function nestedString(s: string): string {
  const needsQuotes = s === '' || /^\s|\s$/.test(s) || /["'(),:=[\]{}]/.test(s) || s.toLowerCase() === 'null';
  return needsQuotes ? `'${s.replace(/[\\']/g, (c) => `\\${c}`)}'` : s;
}

function valueText(value: DuckDBValue, type: DuckDBType, nested: boolean): string {
  if (value === null) return 'NULL';
  switch (type.typeId) {
    case DuckDBTypeId.DOUBLE:
      return formatDouble(value as number);
    case DuckDBTypeId.FLOAT:
      return formatFloat(value as number);
    case DuckDBTypeId.LIST:
    case DuckDBTypeId.ARRAY: {
      const child = (type as DuckDBListType).valueType;
      const items = (value as DuckDBListValue | DuckDBArrayValue).items;
      return `[${items.map((v) => valueText(v, child, true)).join(', ')}]`;
    }
    case DuckDBTypeId.STRUCT: {
      const { entryNames, entryTypes } = type as Extract<DuckDBType, { entryNames: readonly string[] }>;
      const entries = (value as DuckDBStructValue).entries;
      const parts = entryNames.map(
        (name, i) =>
          `'${name.replace(/'/g, "\\'")}': ${valueText(entries[name] ?? null, entryTypes[i] as DuckDBType, true)}`,
      );
      return `{${parts.join(', ')}}`;
    }
    case DuckDBTypeId.MAP: {
      const { keyType, valueType } = type as Extract<DuckDBType, { keyType: DuckDBType }>;
      const parts = (value as DuckDBMapValue).entries.map(
        (e) => `${valueText(e.key, keyType, true)}=${valueText(e.value, valueType, true)}`,
      );
      return `{${parts.join(', ')}}`;
    }
    case DuckDBTypeId.UNION: {
      const { memberTags, memberTypes } = type as Extract<DuckDBType, { memberTags: readonly string[] }>;
      const u = value as DuckDBUnionValue;
      const member = memberTypes[memberTags.indexOf(u.tag)];
      return member ? valueText(u.value, member, nested) : String(u.value);
    }
    default: {
      const text = typeof value === 'string' ? value : String(value);
      return nested && (typeof value === 'string' || type.typeId === DuckDBTypeId.VARCHAR)
        ? nestedString(text)
        : text;
    }
  }
}

const NESTED = new Set<DuckDBTypeId>([
  DuckDBTypeId.LIST,
  DuckDBTypeId.ARRAY,
  DuckDBTypeId.STRUCT,
  DuckDBTypeId.MAP,
  DuckDBTypeId.UNION,
]);

/**
 * One value as JSON text for the `json` mode: numbers and booleans bare, nested values as JSON
 * (`nested`: node-api's JSON form of the value), everything else as its text in quotes.
 */
function jsonText(value: DuckDBValue, type: DuckDBType, text: string, nested: () => Json): string {
  if (value === null) return 'null';
  if (type.typeId === DuckDBTypeId.BOOLEAN) return String(value);
  if (NESTED.has(type.typeId)) return JSON.stringify(nested());
  if (
    NUMERIC.has(type.typeId) &&
    type.typeId !== DuckDBTypeId.DECIMAL &&
    /^-?\d+(\.\d+)?(e[+-]\d+)?$/.test(text)
  ) {
    return text;
  }
  return JSON.stringify(text);
}

/** The whole result as text, ready for sql-render.ts; `withJson` adds the values as JSON text. */
export function tableFromReader(reader: DuckDBResultReader, withJson = false): TextTable {
  const types = reader.columnTypes();
  const columns = reader.columnNames().map((name, i) => {
    const type = types[i] as DuckDBType;
    return {
      name,
      type: typeName(type),
      align: NUMERIC.has(type.typeId) ? ('right' as const) : ('left' as const),
    };
  });
  const values = reader.getRows();
  const rows = values.map((row) =>
    row.map((v, i) => (v === null ? null : valueText(v, types[i] as DuckDBType, false))),
  );
  if (!withJson) return { columns, rows };
  let jsonRows: Json[][] | undefined;
  const json = values.map((row, r) =>
    row.map((v, i) =>
      jsonText(v, types[i] as DuckDBType, rows[r]?.[i] ?? '', () => {
        jsonRows ??= reader.getRowsJson();
        return jsonRows[r]?.[i] ?? null;
      }),
    ),
  );
  return { columns, rows, json };
}
