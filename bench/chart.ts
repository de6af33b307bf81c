/**
 * An SVG chart of one benchmark report: each of our figures as a bar beside the reference it was
 * measured against in the same run (same scale within the pair, the ratio written out), and
 * figures without a reference listed as text below. Self-contained SVG (no scripts, no fonts to fetch),
 * so docs/INTERNALS.md can show it and a browser or GitHub renders it as is.
 */

/** A report row as bench/report.ts writes it. */
export interface ChartRow {
  name: string;
  value: number;
  unit: string;
  ratioTo?: string;
  note?: string;
}

export interface ChartInput {
  suite: string;
  date: string;
  rows: readonly ChartRow[];
}

const WIDTH = 760;
const LABEL = 300; // left column: the row's name
const BAR_MAX = WIDTH - LABEL - 150; // room to the right of a bar for its value
const BAR_H = 14;
const COLOURS = { ours: '#2f6fb2', ref: '#a3a9b1' };

const xml = (s: string) =>
  s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

function fmt(v: number): string {
  if (!Number.isFinite(v)) return String(v);
  if (Math.abs(v) >= 100) return Math.round(v).toLocaleString('en-US');
  if (Math.abs(v) >= 1) return v.toFixed(2);
  return v.toPrecision(3);
}

/** Throughputs and rates (a unit per second) are better higher; times, sizes and CPU per byte lower. */
export function higherIsBetter(unit: string): boolean {
  return /\/s$|per s|\bops\b/.test(unit);
}

/** A text that may not fit its column is cut with an ellipsis (SVG does not wrap). */
function clip(s: string, max: number): string {
  return s.length <= max ? s : `${s.slice(0, max - 1)}…`;
}

/**
 * The chart of `report` as SVG text.
 *
 * @example
 * writeFileSync('tailnet.svg', renderChart({ suite: 'tailnet', date, rows }));
 */
export function renderChart(report: ChartInput): string {
  const byName = new Map(report.rows.map((r) => [r.name, r]));
  const referenced = new Set(report.rows.map((r) => r.ratioTo).filter((n): n is string => !!n));
  const pairs: { ours: ChartRow; ref: ChartRow }[] = [];
  const alone: ChartRow[] = [];
  for (const r of report.rows) {
    const ref = r.ratioTo ? byName.get(r.ratioTo) : undefined;
    if (ref) pairs.push({ ours: r, ref });
    else if (!referenced.has(r.name)) alone.push(r);
  }
  const parts: string[] = [];
  let y = 56;
  for (const { ours, ref } of pairs) {
    const scale = Math.max(Math.abs(ours.value), Math.abs(ref.value)) || 1;
    const bar = (row: ChartRow, colour: string, label: string, at: number) => {
      const w = Math.max(1, (Math.abs(row.value) / scale) * BAR_MAX);
      parts.push(
        `<text x="${LABEL - 8}" y="${at + BAR_H - 3}" text-anchor="end" class="l">${xml(clip(label, 44))}</text>`,
        `<rect x="${LABEL}" y="${at}" width="${w.toFixed(1)}" height="${BAR_H}" fill="${colour}"/>`,
        `<text x="${(LABEL + w + 6).toFixed(1)}" y="${at + BAR_H - 3}" class="v">${xml(`${fmt(row.value)} ${row.unit}`)}</text>`,
      );
    };
    const better = higherIsBetter(ours.unit) ? 'higher is better' : 'lower is better';
    parts.push(
      `<text x="12" y="${y + 4}" class="h">${xml(clip(ours.name.replace(/^ours: /, ''), 80))}</text>`,
      `<text x="${WIDTH - 12}" y="${y + 4}" text-anchor="end" class="r">${xml(`${fmt(ours.value / ref.value)}× the reference (${better})`)}</text>`,
    );
    bar(ref, COLOURS.ref, ref.name.replace(/^reference: /, ''), y + 12);
    bar(ours, COLOURS.ours, ours.note ? `ours (${ours.note})` : 'ours', y + 12 + BAR_H + 4);
    y += 12 + 2 * BAR_H + 4 + 22;
  }
  // Figures with no same-run reference: as text, since a bar would have nothing to compare with.
  if (alone.length > 0) {
    parts.push(`<text x="12" y="${y + 4}" class="h">other figures</text>`);
    y += 12;
    for (const r of alone) {
      parts.push(
        `<text x="${LABEL - 8}" y="${y + BAR_H - 3}" text-anchor="end" class="l">${xml(clip(r.name, 44))}</text>`,
        `<text x="${LABEL}" y="${y + BAR_H - 3}" class="v">${xml(`${fmt(r.value)} ${r.unit}${r.note ? `  (${clip(r.note, 60)})` : ''}`)}</text>`,
      );
      y += BAR_H + 4;
    }
  }
  const height = y + 8;
  const date = report.date.replace('T', ' ').replace(/\.\d+Z$/, ' UTC');
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${height}" viewBox="0 0 ${WIDTH} ${height}" role="img" aria-label="${xml(`${report.suite} benchmark`)}">`,
    '<style>text{font-family:system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;font-size:12px;fill:#222}' +
      '.t{font-size:15px;font-weight:600}.h{font-weight:600}.r{fill:#2f6fb2;font-weight:600}.l{fill:#444}.v{fill:#222}.s{fill:#666}</style>',
    `<rect width="${WIDTH}" height="${height}" fill="#fff"/>`,
    `<text x="12" y="22" class="t">${xml(`npm run bench -- ${report.suite}`)}</text>`,
    `<text x="12" y="40" class="s">${xml(`${date}: ours (blue) beside the reference measured in the same run (grey)`)}</text>`,
    ...parts,
    '</svg>',
    '',
  ].join('\n');
}
