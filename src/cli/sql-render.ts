/**
 * How `quackscale sql` prints a result: DuckDB's CLI output modes (`duckbox`, `line`, `csv`,
 * `json`) over a table whose values are already text (see sql-values.ts). The duckbox layout
 * follows DuckDB's BoxRenderer (src/common/box_renderer.cpp) as the 1.5.5 CLI prints it:
 * names and types centred, numbers right-aligned, NULL as `NULL`, at most 40 rows shown (the
 * first and last halves, with `·` between), columns narrowed or elided (`…`) to fit the width,
 * and a row count under the box for empty and long results.
 */

/** The output modes of the `.mode` dot command. */
export const OUTPUT_MODES = ['duckbox', 'line', 'csv', 'json'] as const;
export type OutputMode = (typeof OUTPUT_MODES)[number];

/** One result column: its name, DuckDB's display name of its type, and how values align. */
export interface TableColumn {
  name: string;
  type: string;
  align: 'left' | 'right';
}

/** A result as text: `rows[r][c]` is the value DuckDB's VARCHAR cast gives, or null for NULL. */
export interface TextTable {
  columns: TableColumn[];
  rows: (string | null)[][];
  /** The same values as JSON text (numbers unquoted), for the `json` mode; text is quoted without it. */
  json?: string[][];
}

export interface DuckboxOptions {
  /** Rows shown before the middle is elided (DuckDB's `.maxrows`, default 40). */
  maxRows?: number;
  /** Width to fit in (DuckDB: the terminal's, or 120 when not a terminal; never under 80). */
  maxWidth?: number;
  /** Narrowest a wide column is cut to before columns are elided (DuckDB's max_col_width, 20). */
  maxColWidth?: number;
  /** Text shown for NULL (DuckDB's `.nullvalue`, default `NULL`). */
  nullValue?: string;
}

const DOTDOTDOT = '…';
const DOT = '·';

/** Renders `table` in `mode`; the text ends with a newline unless it is empty. */
export function renderTable(table: TextTable, mode: OutputMode, opts: DuckboxOptions = {}): string {
  switch (mode) {
    case 'duckbox':
      return renderDuckbox(table, opts);
    case 'line':
      return renderLine(table, opts.nullValue ?? 'NULL');
    case 'csv':
      return renderCsv(table, opts.nullValue ?? 'NULL');
    case 'json':
      return renderJson(table);
  }
}

/** Terminal columns a code point takes: 0 for combining marks, 2 for wide East Asian and emoji. */
function codePointWidth(cp: number): number {
  if (cp === 0x200d || (cp >= 0x300 && cp <= 0x36f) || (cp >= 0xfe00 && cp <= 0xfe0f)) return 0;
  if (
    (cp >= 0x1100 && cp <= 0x115f) ||
    (cp >= 0x2e80 && cp <= 0xa4cf && cp !== 0x303f) ||
    (cp >= 0xac00 && cp <= 0xd7a3) ||
    (cp >= 0xf900 && cp <= 0xfaff) ||
    (cp >= 0xfe30 && cp <= 0xfe4f) ||
    (cp >= 0xff00 && cp <= 0xff60) ||
    (cp >= 0xffe0 && cp <= 0xffe6) ||
    (cp >= 0x1f300 && cp <= 0x1faff) ||
    (cp >= 0x20000 && cp <= 0x3fffd)
  ) {
    return 2;
  }
  return 1;
}

/** Width of `s` on a terminal (DuckDB's Utf8Proc::RenderWidth). */
export function displayWidth(s: string): number {
  let w = 0;
  for (const ch of s) w += codePointWidth(ch.codePointAt(0) as number);
  return w;
}

/** `s` cut to at most `width` columns with `…` appended, as DuckDB shortens a narrowed value. */
function truncate(s: string, width: number): string {
  let out = '';
  let w = DOTDOTDOT.length;
  for (const ch of s) {
    const cw = codePointWidth(ch.codePointAt(0) as number);
    if (w + cw >= width) break;
    out += ch;
    w += cw;
  }
  return out + DOTDOTDOT;
}

/** Control characters as escapes (`\n`, `\t`, …), so every value stays on one line (BoxRenderer). */
export function escapeControl(s: string): string {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: matching control characters is the point
  return s.replace(/[\x00-\x1f]/g, (c) => {
    const code = c.charCodeAt(0);
    const named: Record<number, string> = {
      7: 'a',
      8: 'b',
      9: 't',
      10: 'n',
      11: 'v',
      12: 'f',
      13: 'r',
      27: 'e',
    };
    return `\\${named[code] ?? String(code)}`;
  });
}

type Align = 'left' | 'right' | 'middle';

/** One cell padded to `width` between a leading `│` and the next one (BoxRenderer::RenderValue). */
function cell(value: string, width: number, align: Align): string {
  let text = value;
  let w = displayWidth(value);
  if (w > width) {
    text = truncate(value, width);
    w = displayWidth(text);
  }
  const pad = width - w + 2;
  const left = align === 'left' ? 1 : align === 'right' ? pad - 1 : Math.floor(pad / 2);
  return `│${' '.repeat(left)}${text}${' '.repeat(pad - left)}`;
}

function rule(widths: number[], left: string, mid: string, right: string): string {
  return left + widths.map((w) => '─'.repeat(w + 2)).join(mid) + right;
}

/** A column as rendered: an index into the table's columns, or the `…` of elided columns. */
type Shown = number | 'elided';

/** Fits the columns into `maxWidth`: first narrows wide ones, then elides from the middle out. */
function fitColumns(
  widths: number[],
  maxWidth: number,
  maxColWidth: number,
): { shown: Shown[]; widths: number[] } {
  const w = [...widths];
  let total = 1 + w.reduce((a, b) => a + b + 3, 0);
  if (total > maxWidth) {
    for (let c = 0; c < w.length && total > maxWidth; c++) {
      const wc = w[c] as number;
      if (wc <= maxColWidth) continue;
      const cut = Math.min(wc - maxColWidth, total - maxWidth);
      w[c] = wc - cut;
      total -= cut;
    }
  }
  const pruned = new Set<number>();
  if (total > maxWidth) {
    // Room for the `…` column, then remove columns zig-zagging out from the middle, as DuckDB does.
    total += 3 + DOTDOTDOT.length;
    let offset = 0;
    while (total > maxWidth && pruned.size < w.length - 1) {
      const c = Math.floor(w.length / 2) + offset;
      if (c >= 0 && c < w.length && !pruned.has(c)) {
        total -= (w[c] as number) + 3;
        pruned.add(c);
      }
      offset = offset >= 0 ? -offset - 1 : -offset;
    }
  }
  const shown: Shown[] = [];
  const outWidths: number[] = [];
  for (let c = 0; c < w.length; c++) {
    if (!pruned.has(c)) {
      shown.push(c);
      outWidths.push(w[c] as number);
    } else if (!shown.includes('elided')) {
      shown.push('elided');
      outWidths.push(DOTDOTDOT.length);
    }
  }
  return { shown, widths: outWidths };
}

/** DuckDB's box layout. */
export function renderDuckbox(table: TextTable, opts: DuckboxOptions = {}): string {
  const maxRows = opts.maxRows ?? 40;
  const maxWidth = Math.max(80, opts.maxWidth ?? 120);
  const nullValue = opts.nullValue ?? 'NULL';
  const { columns, rows } = table;
  if (columns.length === 0) return '';
  const n = rows.length;
  // Hiding rows costs three divider lines: not worth it when only slightly over the limit.
  const toRender = n <= maxRows + 3 ? n : maxRows;
  const top = toRender === n ? n : Math.ceil(toRender / 2);
  const bottom = toRender - top;
  const hiddenRows = toRender < n;
  const picked = [...rows.slice(0, top), ...rows.slice(n - bottom)];
  const text = picked.map((r) => r.map((v) => (v === null ? nullValue : escapeControl(v))));

  const rowCount = `${n} rows`;
  const shownCount = hiddenRows ? `${toRender} shown` : '';
  const footerWidth = Math.max(rowCount.length, shownCount.length + 2) + 4;
  const natural = columns.map((col, c) =>
    Math.max(
      displayWidth(escapeControl(col.name)),
      displayWidth(col.type),
      ...text.map((r) => displayWidth(r[c] as string)),
    ),
  );
  // A result whose row count must be shown (rows hidden, or none) is widened to fit it.
  const naturalTotal = 1 + natural.reduce((a, b) => a + b + 3, 0);
  if ((hiddenRows || n === 0) && naturalTotal < footerWidth)
    natural[0] = (natural[0] as number) + footerWidth - naturalTotal;
  const { shown, widths } = fitColumns(natural, maxWidth, opts.maxColWidth ?? 20);
  const total = 1 + widths.reduce((a, b) => a + b + 3, 0);

  const line = (values: (c: number) => [string, Align]): string => {
    const cells = shown.map((col, i) => {
      const width = widths[i] as number;
      if (col === 'elided') return cell(DOTDOTDOT, width, 'middle');
      const [value, align] = values(col);
      return cell(value, width, align);
    });
    return `${cells.join('')}│`;
  };
  const out: string[] = [rule(widths, '┌', '┬', '┐')];
  out.push(line((c) => [escapeControl((columns[c] as TableColumn).name), 'middle']));
  out.push(line((c) => [(columns[c] as TableColumn).type, 'middle']));
  if (n > 0) out.push(rule(widths, '├', '┼', '┤'));
  const valueLine = (r: number) => line((c) => [text[r]?.[c] as string, (columns[c] as TableColumn).align]);
  for (let r = 0; r < top; r++) out.push(valueLine(r));
  if (bottom > 0) {
    // The dots sit in the middle of the narrower of the values above and below them.
    const dots = line((c) => {
      const align = (columns[c] as TableColumn).align;
      const i = shown.indexOf(c);
      const width = widths[i] as number;
      const above = Math.min(width, displayWidth(text[top - 1]?.[c] as string));
      const below = Math.min(width, displayWidth(text[top]?.[c] as string));
      const span = above === 0 ? below : below === 0 ? above : Math.min(above, below);
      if (span <= 1) return [DOT, span === 0 ? 'middle' : align];
      const padding = span - 1;
      const left = align === 'left' ? Math.floor(padding / 2) : padding - Math.floor(padding / 2);
      return [`${' '.repeat(left)}${DOT}${' '.repeat(padding - left)}`, align];
    });
    out.push(dots, dots, dots);
    for (let r = top; r < top + bottom; r++) out.push(valueLine(r));
  }
  out.push(rule(widths, '└', '┴', '┘'));

  // The footer: DuckDB 1.5's CLI prints it under the box, centred, for empty and long results.
  const center = (s: string) => `${' '.repeat(Math.max(0, Math.floor((total - displayWidth(s)) / 2)))}${s}`;
  if (total >= footerWidth && (n === 0 || n >= 10)) {
    const both = `${rowCount} (${shownCount})`;
    if (hiddenRows && both.length + 4 <= total) out.push(center(both));
    else {
      out.push(center(rowCount));
      if (hiddenRows) out.push(center(`(${shownCount})`));
    }
  }
  if (shown.includes('elided') && n > 0) {
    const visible = shown.length - 1;
    out.push(center(`${columns.length} columns (${visible} shown)`));
  }
  return `${out.join('\n')}\n`;
}

/** `line` mode: one `name = value` line per column, names right-aligned, a blank line between rows. */
export function renderLine(table: TextTable, nullValue = 'NULL'): string {
  const width = Math.max(0, ...table.columns.map((c) => displayWidth(c.name)));
  const records = table.rows.map((row) =>
    table.columns
      .map((c, i) => `${' '.repeat(width - displayWidth(c.name))}${c.name} = ${row[i] ?? nullValue}`)
      .join('\n'),
  );
  return records.length ? `${records.join('\n\n')}\n` : '';
}

/** A CSV field quoted per RFC 4180 when it holds a comma, quote or line break. */
function csvField(s: string): string {
  return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

/** `csv` mode: a header line, then one line per row. */
export function renderCsv(table: TextTable, nullValue = 'NULL'): string {
  const lines = [table.columns.map((c) => csvField(c.name)).join(',')];
  for (const row of table.rows) lines.push(row.map((v) => csvField(v ?? nullValue)).join(','));
  return `${lines.join('\n')}\n`;
}

/** `json` mode: an array of row objects, one row per line, as DuckDB's CLI prints it. */
export function renderJson(table: TextTable): string {
  const objects = table.rows.map((row, r) => {
    const fields = table.columns.map((c, i) => {
      const json = table.json?.[r]?.[i] ?? JSON.stringify(row[i] ?? null);
      return `${JSON.stringify(c.name)}:${json}`;
    });
    return `{${fields.join(',')}}`;
  });
  return `[${objects.join(',\n')}]\n`;
}
