/**
 * The benchmark harness. A scenario is a pair — the raw client and Omnibus doing the same thing on
 * the same broker — run alternately in the same process, several rounds each, so the ratio is
 * measured under the same conditions. Throughput: messages of 1 KiB from send to handler with
 * `depth` of them in flight (the harness runs each pair at several depths). Latency: p50 and p99
 * of each timed message, from its send to its handler (matched in order), at that same depth.
 */
/** One side of a pair. `setup` prepares a fresh destination; the returned functions are timed. */
export interface Side {
  setup(): Promise<Runner>;
}

export interface Runner {
  /**
   * Sends `count` messages with `depth` in flight (pipelined as the client allows) and resolves
   * once all were handled. A runner that ignores `depth` keeps its own window.
   */
  throughput(count: number, depth?: number): Promise<void>;
  /** Sends one message and resolves when its handler ran. */
  roundTrip(): Promise<void>;
  close(): Promise<void>;
}

export interface Scenario {
  readonly name: string;
  readonly raw: Side;
  readonly omnibus: Side;
  /** Messages per throughput round at 100 or more in flight; shallower depths send fewer (`countAt`). */
  readonly count: number;
  /** Round trips per latency round; also the floor (×2) of the count at shallow depths. */
  readonly roundTrips: number;
  /** The fewest messages a timed round sends, however shallow the depth. @default 2 × roundTrips */
  readonly minCount?: number;
}

export interface Measurement {
  readonly throughput: number;
  /** Milliseconds, send to handler (or to the broker's confirm where a pair has no handler). */
  readonly p50: number;
  readonly p99: number;
  /**
   * CPU time of this process per message in the timed round, in µs (`process.cpuUsage`, user +
   * system, every thread of the process: its garbage collector's helpers too; the broker is another
   * process). Far steadier than msg/s on a shared machine. Absent in files written before it was.
   */
  readonly cpuUs?: number;
}

export interface Result {
  readonly scenario: string;
  readonly raw: Measurement;
  readonly omnibus: Measurement;
  /** Messages in flight. */
  readonly depth?: number;
  /** Messages per timed round. */
  readonly count?: number;
  /** Every round's measurement, in order (the medians above are taken from these). */
  readonly rawRounds?: readonly Measurement[];
  readonly omnibusRounds?: readonly Measurement[];
}

/** The depths the targets are measured at. */
export const DEFAULT_DEPTHS: readonly number[] = [1, 100, 500];

export const MESSAGE_BYTES = 1024;

/** A 1 KiB payload. */
export function payload(): Uint8Array {
  return Uint8Array.from({ length: MESSAGE_BYTES }, (_, i) => i % 251);
}

/**
 * Per-message timestamps of one timed round: send start by index, broker confirm by index, and
 * handler calls in arrival order. Preallocated, two `performance.now()` calls per message on
 * either side, so it costs raw and Omnibus the same.
 */
class Recording {
  readonly started: Float64Array;
  readonly confirmed: Float64Array;
  readonly handled: Float64Array;
  sent = 0;
  hits = 0;

  constructor(readonly capacity: number) {
    this.started = new Float64Array(capacity);
    this.confirmed = new Float64Array(capacity);
    this.handled = new Float64Array(capacity);
  }

  /** Send-to-handler latencies when every message reached a handler, else send-to-confirm. */
  latencies(): Float64Array {
    const n = Math.min(this.sent, this.capacity);
    const out = new Float64Array(n);
    const ends = this.hits >= n ? this.handled : this.confirmed;
    for (let i = 0; i < n; i++) out[i] = ends[i]! - this.started[i]!;
    return out.sort();
  }
}

let recording: Recording | undefined;

/** For runners that send in batches of their own: `n` messages start now; returns the first index. */
export function markSent(n: number): number {
  const r = recording;
  if (r === undefined) return 0;
  const first = r.sent;
  const now = performance.now();
  for (let i = 0; i < n && r.sent < r.capacity; i++) r.started[r.sent++] = now;
  return first;
}

/** For runners that send in batches of their own: the `n` messages from `first` were confirmed. */
export function markConfirmed(first: number, n: number): void {
  const r = recording;
  if (r === undefined) return;
  const now = performance.now();
  for (let i = first; i < first + n && i < r.capacity; i++) r.confirmed[i] = now;
}

/** Counts handled messages and wakes the waiter at a target, without a timer per message. */
export class Counter {
  private count = 0;
  private target = Number.POSITIVE_INFINITY;
  private wake: (() => void) | undefined;

  readonly hit = (): void => {
    const r = recording;
    if (r !== undefined && r.hits < r.capacity) r.handled[r.hits++] = performance.now();
    if (++this.count >= this.target && this.wake !== undefined) {
      const wake = this.wake;
      this.wake = undefined;
      wake();
    }
  };

  /** Resolves when `more` messages beyond the current count have been handled. */
  expect(more: number): Promise<void> {
    this.target = this.count + more;
    if (this.count >= this.target) return Promise.resolve();
    return new Promise((resolve) => {
      this.wake = resolve;
    });
  }
}

/**
 * The timed half of a runner whose handler calls `counter.hit`: sends, then waits for the handler.
 * `window` is the depth when the harness gives none.
 */
export function counting(
  counter: Counter,
  window: number,
  send: () => Promise<unknown>,
): Pick<Runner, 'throughput' | 'roundTrip'> {
  return {
    async throughput(count, depth = window) {
      const done = counter.expect(count);
      await pipelined(count, depth, send);
      await done;
    },
    async roundTrip() {
      const done = counter.expect(1);
      await send();
      await done;
    },
  };
}

/** Runs `send(i)` for i < count with at most `window` in flight (timestamped while a round is timed). */
export async function pipelined(
  count: number,
  window: number,
  send: (i: number) => Promise<unknown>,
): Promise<void> {
  let next = 0;
  const r = recording;
  const lane =
    r === undefined
      ? async () => {
          while (next < count) await send(next++);
        }
      : async () => {
          while (next < count) {
            const i = next++;
            const slot = r.sent < r.capacity ? r.sent++ : -1;
            if (slot >= 0) r.started[slot] = performance.now();
            await send(i);
            if (slot >= 0) r.confirmed[slot] = performance.now();
          }
        };
  const lanes = Array.from({ length: Math.max(1, Math.min(window, count)) }, lane);
  await Promise.all(lanes);
}

/** Messages in one timed round at `depth`: the scenario's count from 100 in flight, fewer below. */
export function countAt(scenario: Scenario, depth: number, scale = 1): number {
  const floor = Math.min(scenario.count, scenario.minCount ?? scenario.roundTrips * 2);
  const count = Math.min(scenario.count, Math.max(floor, Math.ceil((scenario.count * depth) / 100)));
  return Math.max(50, Math.round(count * scale));
}

/** Called around the timed part of a measurement only (the profiler uses it). */
export interface TimedHooks {
  before?(): Promise<void>;
  after?(): Promise<void>;
}

export async function measure(
  side: Side,
  scenario: Scenario,
  depth?: number,
  count: number = scenario.count,
  hooks: TimedHooks = {},
): Promise<Measurement> {
  const runner = await side.setup();
  try {
    await runner.throughput(Math.min(1000, Math.ceil(count / 2)), depth);
    await hooks.before?.();
    const timed = new Recording(count);
    recording = timed;
    const cpu = process.cpuUsage();
    const started = performance.now();
    try {
      await runner.throughput(count, depth);
    } finally {
      recording = undefined;
    }
    const seconds = (performance.now() - started) / 1000;
    const used = process.cpuUsage(cpu);
    await hooks.after?.();
    const latencies = timed.latencies();
    return {
      throughput: count / seconds,
      p50: percentile(latencies, 0.5),
      p99: percentile(latencies, 0.99),
      cpuUs: (used.user + used.system) / count,
    };
  } finally {
    recording = undefined;
    await runner.close();
  }
}

/**
 * Alternates raw and Omnibus `rounds` times at `depth` (the runners' own window when undefined)
 * and keeps the median of each.
 */
export async function compare(
  scenario: Scenario,
  rounds: number,
  depth?: number,
  count: number = depth === undefined ? scenario.count : countAt(scenario, depth),
): Promise<Result> {
  const raw: Measurement[] = [];
  const omnibus: Measurement[] = [];
  for (let round = 0; round < rounds; round++) {
    raw.push(await measure(scenario.raw, scenario, depth, count));
    omnibus.push(await measure(scenario.omnibus, scenario, depth, count));
  }
  return {
    scenario: scenario.name,
    raw: median(raw),
    omnibus: median(omnibus),
    ...(depth === undefined ? {} : { depth }),
    count,
    rawRounds: raw,
    omnibusRounds: omnibus,
  };
}

export function table(results: readonly Result[]): string {
  const rows = [
    [
      'scenario',
      'depth',
      'raw msg/s',
      'omnibus msg/s',
      'ratio',
      'raw p50 ms',
      'omnibus p50 ms',
      'raw p99 ms',
      'omnibus p99 ms',
      'p99 ratio',
      'raw CPU µs/msg',
      'omnibus CPU µs/msg',
      'CPU ratio',
    ],
  ];
  for (const r of results) {
    rows.push([
      r.scenario,
      r.depth === undefined ? '' : String(r.depth),
      fmt(r.raw.throughput, 0),
      fmt(r.omnibus.throughput, 0),
      fmt(r.omnibus.throughput / r.raw.throughput, 2),
      fmt(r.raw.p50, 3),
      fmt(r.omnibus.p50, 3),
      fmt(r.raw.p99, 3),
      fmt(r.omnibus.p99, 3),
      fmt(r.omnibus.p99 / r.raw.p99, 2),
      fmt(r.raw.cpuUs ?? Number.NaN, 1),
      fmt(r.omnibus.cpuUs ?? Number.NaN, 1),
      fmt(cpuRatio(r.raw, r.omnibus), 2),
    ]);
  }
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((row) => row[c]!.length)));
  const line = (row: string[]) => `| ${row.map((cell, c) => cell.padEnd(widths[c]!)).join(' | ')} |`;
  return [
    line(rows[0]!),
    `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`,
    ...rows.slice(1).map(line),
  ].join('\n');
}

function percentile(sorted: ArrayLike<number>, p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]!;
}

/**
 * Raw's CPU per message over Omnibus's: read like the throughput ratio (1 is parity, below 1
 * Omnibus costs more). NaN when a side has none.
 */
export function cpuRatio(raw: Measurement, omnibus: Measurement): number {
  return raw.cpuUs === undefined || omnibus.cpuUs === undefined ? Number.NaN : raw.cpuUs / omnibus.cpuUs;
}

function median(values: readonly Measurement[]): Measurement {
  const pick = (key: keyof Measurement) => {
    const sorted = values.map((v) => v[key] ?? Number.NaN).sort((a, b) => a - b);
    return sorted[Math.floor(sorted.length / 2)]!;
  };
  return { throughput: pick('throughput'), p50: pick('p50'), p99: pick('p99'), cpuUs: pick('cpuUs') };
}

function fmt(value: number, digits: number): string {
  return value.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
}
