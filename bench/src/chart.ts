/**
 * Renders a results file (results.ts) into SVG with Vega-Lite, in Node, without a browser or a
 * canvas: vega's headless View writes SVG strings itself (text widths are estimated).
 * - ratios: Omnibus / raw throughput per pair, one bar per depth, with the 0.95 target line.
 * - throughput: msg/s raw and Omnibus per pair and depth, one panel per pair (each its own scale:
 *   memory moves a million a second, STOMP a few thousand).
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse, View } from 'vega';
import { compile, type TopLevelSpec } from 'vega-lite';
import type { BenchRun } from './results.js';

/** The target: Omnibus throughput at least 0.95 of the raw client's. */
export const TARGET_RATIO = 0.95;

export interface RatioRow {
  readonly pair: string;
  readonly depth: string;
  readonly ratio: number;
}

export interface ThroughputRow {
  readonly pair: string;
  readonly depth: string;
  readonly side: 'raw' | 'omnibus';
  readonly msgPerSecond: number;
}

function depthLabel(depth: number): string {
  return depth === 0 ? 'own window' : `${depth} in flight`;
}

function subtitle(run: BenchRun): string {
  const m = run.machine;
  return (
    `${run.startedAt.slice(0, 16).replace('T', ' ')} UTC, ${run.settings.rounds} rounds (median)` +
    `${run.settings.quick ? ', quick' : ''}, ${m.cpus} CPUs, load ${m.loadStart[0]} → ${m.loadEnd[0]}, node ${m.node}`
  );
}

export function ratioRows(run: BenchRun): RatioRow[] {
  return run.results.map((r) => ({
    pair: r.pair,
    depth: depthLabel(r.depth),
    ratio: Math.round(r.ratio * 1000) / 1000,
  }));
}

export function throughputRows(run: BenchRun): ThroughputRow[] {
  return run.results.flatMap((r) => [
    {
      pair: r.pair,
      depth: depthLabel(r.depth),
      side: 'raw' as const,
      msgPerSecond: Math.round(r.raw.throughput),
    },
    {
      pair: r.pair,
      depth: depthLabel(r.depth),
      side: 'omnibus' as const,
      msgPerSecond: Math.round(r.omnibus.throughput),
    },
  ]);
}

/** Depth labels in the order they were run (1, 100, 500), not alphabetical. */
function depthOrder(run: BenchRun): string[] {
  return [...new Set([...run.results].sort((a, b) => a.depth - b.depth).map((r) => depthLabel(r.depth)))];
}

export function ratioSpec(run: BenchRun): TopLevelSpec {
  const rows = ratioRows(run);
  const pairs = [...new Set(rows.map((r) => r.pair))];
  const depths = depthOrder(run);
  const max = Math.max(1.1, ...rows.map((r) => r.ratio));
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: { text: 'Omnibus / raw client throughput (target ≥ 0.95)', subtitle: subtitle(run) },
    width: 520,
    height: { step: 12 * depths.length + 6 },
    layer: [
      {
        data: { values: rows },
        mark: { type: 'bar', tooltip: true },
        encoding: {
          y: { field: 'pair', type: 'nominal', sort: pairs, title: null, axis: { labelLimit: 480 } },
          yOffset: { field: 'depth', type: 'nominal', sort: depths },
          x: { field: 'ratio', type: 'quantitative', title: 'ratio', scale: { domain: [0, max] } },
          color: { field: 'depth', type: 'nominal', sort: depths, title: 'depth' },
        },
      },
      {
        data: { values: rows },
        mark: { type: 'text', align: 'left', dx: 3, fontSize: 9 },
        encoding: {
          y: { field: 'pair', type: 'nominal', sort: pairs },
          yOffset: { field: 'depth', type: 'nominal', sort: depths },
          x: { field: 'ratio', type: 'quantitative' },
          text: { field: 'ratio', type: 'quantitative', format: '.2f' },
        },
      },
      {
        data: { values: [{ target: TARGET_RATIO }] },
        mark: { type: 'rule', color: '#c0392b', strokeDash: [4, 3], strokeWidth: 1.5 },
        encoding: { x: { field: 'target', type: 'quantitative' } },
      },
    ],
  };
}

export function throughputSpec(run: BenchRun): TopLevelSpec {
  const rows = throughputRows(run);
  const pairs = [...new Set(rows.map((r) => r.pair))];
  const depths = depthOrder(run);
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: { text: 'Throughput, raw client and Omnibus (msg/s)', subtitle: subtitle(run) },
    data: { values: rows },
    facet: {
      row: {
        field: 'pair',
        type: 'nominal',
        sort: pairs,
        title: null,
        header: {
          labelAngle: 0,
          labelAlign: 'left',
          labelAnchor: 'start',
          labelOrient: 'top',
          labelFontWeight: 'bold',
        },
      },
    },
    spacing: 8,
    resolve: { scale: { x: 'independent' } },
    spec: {
      width: 440,
      height: { step: 10 },
      mark: { type: 'bar', tooltip: true },
      encoding: {
        y: { field: 'depth', type: 'nominal', sort: depths, title: null },
        yOffset: { field: 'side', type: 'nominal', sort: ['raw', 'omnibus'] },
        x: { field: 'msgPerSecond', type: 'quantitative', title: 'msg/s' },
        color: {
          field: 'side',
          type: 'nominal',
          sort: ['raw', 'omnibus'],
          scale: { range: ['#7f8c8d', '#2e86de'] },
          title: null,
        },
      },
    },
  };
}

/** The SVG of `spec`, with its title as the SVG's `<title>` (what a screen reader announces). */
export async function renderSvg(spec: TopLevelSpec): Promise<string> {
  const view = new View(parse(compile(spec).spec), { renderer: 'none' });
  try {
    const svg = await view.toSVG();
    const title =
      typeof spec.title === 'object' && spec.title !== null && 'text' in spec.title ? spec.title.text : '';
    return svg.replace(/^<svg[^>]*>/, (open) => `${open}<title>${escapeXml(String(title))}</title>`);
  } finally {
    view.finalize();
  }
}

function escapeXml(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

/** Writes bench-ratios.svg and bench-throughput.svg into `dir`; returns their paths. */
export async function renderCharts(run: BenchRun, dir: string): Promise<string[]> {
  const out = [
    [join(dir, 'bench-ratios.svg'), await renderSvg(ratioSpec(run))],
    [join(dir, 'bench-throughput.svg'), await renderSvg(throughputSpec(run))],
  ] as const;
  for (const [path, svg] of out) writeFileSync(path, `${svg}\n`);
  return out.map(([path]) => path);
}
