/**
 * Metric families and their Prometheus text exposition (format 0.0.4: `# HELP`, `# TYPE`, one
 * line per sample, label values escaped), for the node's metrics (collect.ts).
 */

/** A Prometheus metric type; the node only has counters and gauges. */
export type MetricType = 'counter' | 'gauge';

/** One time series' value now. */
export interface MetricSample {
  labels: Readonly<Record<string, string>>;
  value: number;
}

/** A metric name with its help, type and samples (one per label set). */
export interface MetricFamily {
  name: string;
  help: string;
  type: MetricType;
  samples: MetricSample[];
}

/** The exposition format's escapes: `\` and newline in HELP; also `"` in label values. */
const escapeHelp = (s: string) => s.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
const escapeLabel = (s: string) => escapeHelp(s).replace(/"/g, '\\"');

function formatValue(v: number): string {
  if (Number.isNaN(v)) return 'NaN';
  if (v === Number.POSITIVE_INFINITY) return '+Inf';
  if (v === Number.NEGATIVE_INFINITY) return '-Inf';
  return String(v);
}

/**
 * The families as Prometheus text.
 *
 * @example
 * renderPrometheus([{ name: 'x_total', help: 'Xs.', type: 'counter', samples: [{ labels: { a: 'b' }, value: 1 }] }]);
 * // # HELP x_total Xs.\n# TYPE x_total counter\nx_total{a="b"} 1\n
 */
export function renderPrometheus(families: readonly MetricFamily[]): string {
  const lines: string[] = [];
  for (const f of families) {
    lines.push(`# HELP ${f.name} ${escapeHelp(f.help)}`, `# TYPE ${f.name} ${f.type}`);
    for (const s of f.samples) {
      const labels = Object.entries(s.labels)
        .map(([k, v]) => `${k}="${escapeLabel(v)}"`)
        .join(',');
      lines.push(`${f.name}${labels ? `{${labels}}` : ''} ${formatValue(s.value)}`);
    }
  }
  return `${lines.join('\n')}\n`;
}
