// The SVG chart each bench suite writes beside its JSON: ours beside the same-run reference.
import { describe, expect, it } from 'vitest';
import { higherIsBetter, renderChart } from '../../bench/chart.js';

const report = {
  suite: 'tailnet',
  date: '2026-12-03T09:39:09.311Z',
  rows: [
    { name: 'reference: tailscaled idle RSS', value: 35, unit: 'MB' },
    { name: 'reference: tailscaled pair <direct> & "fast"', value: 140, unit: 'MB/s' },
    { name: 'ours: idle node RSS', value: 52.5, unit: 'MB', ratioTo: 'reference: tailscaled idle RSS' },
    {
      name: 'ours: bulk TCP',
      value: 70,
      unit: 'MB/s',
      ratioTo: 'reference: tailscaled pair <direct> & "fast"',
      note: '200 MB',
    },
    { name: 'handshakes', value: 1234.5, unit: 'handshakes/s' },
  ],
};

/** Each `<rect … width="W"` after the background, in order. */
const widths = (svg: string) =>
  [...svg.matchAll(/<rect x="\d+" y="\d+" width="([\d.]+)"/g)].map((m) => Number(m[1]));

describe('bench chart', () => {
  it('draws each of our figures beside its reference, on one scale per pair, with the ratio', () => {
    const svg = renderChart(report);
    expect(svg.startsWith('<svg xmlns="http://www.w3.org/2000/svg"')).toBe(true);
    expect(svg.trimEnd().endsWith('</svg>')).toBe(true);
    expect(svg).toContain('npm run bench -- tailnet');
    expect(svg).toContain('1.50× the reference (lower is better)');
    expect(svg).toContain('0.500× the reference (higher is better)');
    // Pairs: reference then ours; the longer of the two fills the bar width, the other in proportion.
    const [refRss, ourRss, refTcp, ourTcp, ...more] = widths(svg);
    expect(ourRss).toBeCloseTo(310, 0);
    expect(refRss! / ourRss!).toBeCloseTo(35 / 52.5, 2);
    expect(ourTcp! / refTcp!).toBeCloseTo(0.5, 2);
    // A figure with no reference is text, not a bar.
    expect(more).toEqual([]);
    expect(svg).toContain('other figures');
    expect(svg).toContain('52.50 MB');
    expect(svg).toContain('1,235 handshakes/s');
    expect(svg).toContain('ours (200 MB)');
    // Text is escaped: names come from the suites.
    expect(svg).toContain('tailscaled pair &lt;direct&gt; &amp; &quot;fast&quot;');
    expect(svg).not.toMatch(/<direct>/);
    // A reference appears only inside its pair, not again on its own.
    expect(svg.match(/tailscaled idle RSS/g)).toHaveLength(1);
  });

  it('knows which way is better from the unit', () => {
    expect(['MB/s', 'handshakes/s', 'pkt/s'].map(higherIsBetter)).toEqual([true, true, true]);
    expect(['ms', 'MB', 'CPU-s/GB'].map(higherIsBetter)).toEqual([false, false, false]);
  });
});
