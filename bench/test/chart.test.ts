import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  ratioRows,
  ratioSpec,
  renderSvg,
  TARGET_RATIO,
  throughputRows,
  throughputSpec,
} from '../src/chart.js';
import type { BenchRun } from '../src/results.js';

const run = JSON.parse(readFileSync(new URL('./fixtures/run.json', import.meta.url), 'utf8')) as BenchRun;

/** The bars of a rendered chart: the aria-label and the width of each bar's path. */
function bars(svg: string): { label: string; width: number }[] {
  return [
    ...svg.matchAll(
      /<path aria-label="([^"]*)" role="graphics-symbol" aria-roledescription="bar"[^>]* d="M[-\d.]+,[-\d.]+h([\d.]+)/g,
    ),
  ].map((m) => ({ label: m[1]!, width: Number(m[2]) }));
}

describe('bench charts', () => {
  it('draws one ratio bar per pair and depth, scaled to the ratio, and the 0.95 target line', async () => {
    expect(ratioRows(run).map((r) => [r.pair, r.depth, r.ratio])).toEqual([
      ['memory send→consume', '1 in flight', 0.5],
      ['memory send→consume', '500 in flight', 0.3],
      ['rabbitmq send→consume', '1 in flight', 0.96],
      ['rabbitmq send→consume', '500 in flight', 0.8],
    ]);
    const svg = await renderSvg(ratioSpec(run));
    const drawn = bars(svg);
    expect(drawn.map((b) => b.label)).toEqual([
      'ratio: 0.5; pair: memory send→consume; depth: 1 in flight',
      'ratio: 0.3; pair: memory send→consume; depth: 500 in flight',
      'ratio: 0.96; pair: rabbitmq send→consume; depth: 1 in flight',
      'ratio: 0.8; pair: rabbitmq send→consume; depth: 500 in flight',
    ]);
    // Bar lengths are proportional to the ratios (one linear scale from 0).
    const perUnit = drawn[0]!.width / 0.5;
    expect(drawn.map((b) => Math.round((b.width / perUnit) * 100) / 100)).toEqual([0.5, 0.3, 0.96, 0.8]);
    const rule = /<line aria-label="target: 0.95"[^>]*transform="translate\(([\d.]+),0\)"/.exec(svg);
    expect(rule).not.toBeNull();
    expect(Number(rule![1]) / perUnit).toBeCloseTo(TARGET_RATIO, 2);
    expect(svg).toContain('load 4.5 → 6.25');
    expect(svg).toMatch(/^<svg[^>]*><title>Omnibus \/ raw client throughput \(target ≥ 0.95\)<\/title>/);
  });

  it('draws raw and Omnibus msg/s for every pair and depth', async () => {
    const rows = throughputRows(run);
    expect(rows).toHaveLength(8);
    expect(rows.filter((r) => r.side === 'raw').map((r) => r.msgPerSecond)).toEqual([
      50000, 1000000, 1000, 20000,
    ]);
    expect(rows.filter((r) => r.side === 'omnibus').map((r) => r.msgPerSecond)).toEqual([
      25000, 300000, 960, 16000,
    ]);
    const drawn = bars(await renderSvg(throughputSpec(run)));
    expect(drawn).toHaveLength(8);
    expect(drawn.filter((b) => b.label.includes('side: omnibus'))).toHaveLength(4);
    // Each pair has its own scale: the memory panel's longest bar and the RabbitMQ panel's are equal.
    const longest = (pair: string) =>
      Math.max(...drawn.filter((b) => b.label.includes(pair)).map((b) => b.width));
    expect(longest('memory')).toBeCloseTo(longest('rabbitmq'), 0);
  });
});
