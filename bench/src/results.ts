/**
 * The results file a run writes: bench/results/<timestamp>.json and bench/results/latest.json.
 * The charts (chart.ts) are rendered from it, so a run can be re-drawn without re-running it.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, totalmem } from 'node:os';
import { join } from 'node:path';
import { cpuRatio, type Measurement, type Result } from './harness.js';

export interface Machine {
  readonly cpus: number;
  readonly cpuModel: string;
  readonly memoryGiB: number;
  readonly node: string;
  readonly platform: string;
  /** os.loadavg() (1, 5, 15 minutes) when the run started and when it ended. */
  readonly loadStart: readonly number[];
  readonly loadEnd: readonly number[];
}

export interface PairResult {
  readonly pair: string;
  /** The `pnpm bench` target the pair came from (memory, rabbitmq, …). */
  readonly target: string;
  /** Messages in flight. */
  readonly depth: number;
  /** Messages per timed round. */
  readonly count: number;
  readonly rounds: number;
  /** Medians over the rounds. */
  readonly raw: Measurement;
  readonly omnibus: Measurement;
  /** Omnibus / raw throughput, and Omnibus / raw p99. */
  readonly ratio: number;
  readonly p99Ratio: number;
  /** Raw / Omnibus CPU per message (1 is parity); absent in files written before it was measured. */
  readonly cpuRatio?: number;
  /** Every round, in order. */
  readonly rawRounds: readonly Measurement[];
  readonly omnibusRounds: readonly Measurement[];
}

export interface BenchRun {
  readonly version: 1;
  readonly startedAt: string;
  readonly finishedAt: string;
  readonly machine: Machine;
  readonly settings: {
    readonly targets: readonly string[];
    readonly depths: readonly number[];
    readonly rounds: number;
    readonly quick: boolean;
    readonly messageBytes: number;
  };
  readonly results: readonly PairResult[];
}

export function machineAtStart(): Pick<
  Machine,
  'cpus' | 'cpuModel' | 'memoryGiB' | 'node' | 'platform' | 'loadStart'
> {
  const list = cpus();
  return {
    cpus: list.length,
    cpuModel: list[0]?.model.trim() ?? 'unknown',
    memoryGiB: Math.round(totalmem() / 2 ** 30),
    node: process.version,
    platform: `${process.platform} ${process.arch}`,
    loadStart: rounded(loadavg()),
  };
}

export function loadNow(): number[] {
  return rounded(loadavg());
}

export function pairResult(target: string, rounds: number, result: Result): PairResult {
  return {
    pair: result.scenario,
    target,
    depth: result.depth ?? 0,
    count: result.count ?? 0,
    rounds,
    raw: result.raw,
    omnibus: result.omnibus,
    ratio: result.omnibus.throughput / result.raw.throughput,
    p99Ratio: result.omnibus.p99 / result.raw.p99,
    cpuRatio: cpuRatio(result.raw, result.omnibus),
    rawRounds: result.rawRounds ?? [result.raw],
    omnibusRounds: result.omnibusRounds ?? [result.omnibus],
  };
}

/** Writes `<dir>/<timestamp>.json` and `<dir>/latest.json`; returns the first path. */
export function writeRun(dir: string, run: BenchRun): string {
  mkdirSync(dir, { recursive: true });
  const text = `${JSON.stringify(run, null, 2)}\n`;
  const path = join(dir, `${run.startedAt.replace(/[:.]/g, '-')}.json`);
  writeFileSync(path, text);
  writeFileSync(join(dir, 'latest.json'), text);
  return path;
}

export function readRun(path: string): BenchRun {
  const run = JSON.parse(readFileSync(path, 'utf8')) as BenchRun;
  if (run.version !== 1 || !Array.isArray(run.results))
    throw new Error(`${path} is not a bench results file (version 1 with a results array)`);
  return run;
}

function rounded(values: readonly number[]): number[] {
  return values.map((v) => Math.round(v * 100) / 100);
}
