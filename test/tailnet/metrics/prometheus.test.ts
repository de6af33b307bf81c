// The Prometheus text exposition (format 0.0.4) of metric families.
import { describe, expect, it } from 'vitest';
import { renderPrometheus } from '../../../src/tailnet/metrics/prometheus.js';

describe('renderPrometheus', () => {
  it('HELP and TYPE, then one line per sample; no braces without labels', () => {
    const text = renderPrometheus([
      { name: 'a_total', help: 'As.', type: 'counter', samples: [{ labels: {}, value: 3 }] },
      {
        name: 'b',
        help: 'Bs.',
        type: 'gauge',
        samples: [
          { labels: { peer: 'x', path: 'derp' }, value: 1.5 },
          { labels: { peer: 'y', path: 'direct' }, value: 0 },
        ],
      },
    ]);
    expect(text).toBe(
      [
        '# HELP a_total As.',
        '# TYPE a_total counter',
        'a_total 3',
        '# HELP b Bs.',
        '# TYPE b gauge',
        'b{peer="x",path="derp"} 1.5',
        'b{peer="y",path="direct"} 0',
        '',
      ].join('\n'),
    );
  });

  it('escapes backslash, quote and newline in label values, backslash and newline in HELP; NaN and infinities', () => {
    const text = renderPrometheus([
      {
        name: 'c',
        help: 'line\none \\ two',
        type: 'gauge',
        samples: [
          { labels: { v: 'a"b\\c\nd' }, value: Number.NaN },
          { labels: { v: 'i' }, value: Number.POSITIVE_INFINITY },
          { labels: { v: 'j' }, value: Number.NEGATIVE_INFINITY },
        ],
      },
    ]);
    expect(text.split('\n')).toEqual([
      '# HELP c line\\none \\\\ two',
      '# TYPE c gauge',
      'c{v="a\\"b\\\\c\\nd"} NaN',
      'c{v="i"} +Inf',
      'c{v="j"} -Inf',
      '',
    ]);
  });
});
