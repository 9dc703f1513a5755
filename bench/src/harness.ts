/**
 * The benchmark harness. A scenario is a pair — the raw client and Omnibus doing the same thing on
 * the same broker — run alternately in the same process, several rounds each, so the ratio is
 * measured under the same conditions. Throughput: N messages of 1 KiB from send to handler.
 * Latency: one message at a time, send to handler, p50 and p99.
 */

/** One side of a pair. `setup` prepares a fresh destination; the returned functions are timed. */
export interface Side {
  setup(): Promise<Runner>;
}

export interface Runner {
  /** Sends `count` messages (pipelined as the client allows) and resolves once all were handled. */
  throughput(count: number): Promise<void>;
  /** Sends one message and resolves when its handler ran. */
  roundTrip(): Promise<void>;
  close(): Promise<void>;
}

export interface Scenario {
  readonly name: string;
  readonly raw: Side;
  readonly omnibus: Side;
  /** Messages per throughput round. */
  readonly count: number;
  /** Round trips per latency round. */
  readonly roundTrips: number;
}

export interface Measurement {
  readonly throughput: number;
  readonly p50: number;
  readonly p99: number;
}

export interface Result {
  readonly scenario: string;
  readonly raw: Measurement;
  readonly omnibus: Measurement;
}

export const MESSAGE_BYTES = 1024;

/** A 1 KiB payload. */
export function payload(): Uint8Array {
  return Uint8Array.from({ length: MESSAGE_BYTES }, (_, i) => i % 251);
}

/** Counts handled messages and wakes the waiter at a target, without a timer per message. */
export class Counter {
  private count = 0;
  private target = Number.POSITIVE_INFINITY;
  private wake: (() => void) | undefined;

  readonly hit = (): void => {
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

/** The timed half of a runner whose handler calls `counter.hit`: sends, then waits for the handler. */
export function counting(
  counter: Counter,
  window: number,
  send: () => Promise<unknown>,
): Pick<Runner, 'throughput' | 'roundTrip'> {
  return {
    async throughput(count) {
      const done = counter.expect(count);
      await pipelined(count, window, send);
      await done;
    },
    async roundTrip() {
      const done = counter.expect(1);
      await send();
      await done;
    },
  };
}

/** Runs `send(i)` for i < count with at most `window` in flight. */
export async function pipelined(
  count: number,
  window: number,
  send: (i: number) => Promise<unknown>,
): Promise<void> {
  let next = 0;
  const lanes = Array.from({ length: Math.min(window, count) }, async () => {
    while (next < count) await send(next++);
  });
  await Promise.all(lanes);
}

export async function measure(side: Side, scenario: Scenario): Promise<Measurement> {
  const runner = await side.setup();
  try {
    await runner.throughput(Math.min(1000, scenario.count));
    const started = performance.now();
    await runner.throughput(scenario.count);
    const seconds = (performance.now() - started) / 1000;
    const latencies: number[] = [];
    for (let i = 0; i < scenario.roundTrips; i++) {
      const t0 = performance.now();
      await runner.roundTrip();
      latencies.push(performance.now() - t0);
    }
    latencies.sort((a, b) => a - b);
    return {
      throughput: scenario.count / seconds,
      p50: percentile(latencies, 0.5),
      p99: percentile(latencies, 0.99),
    };
  } finally {
    await runner.close();
  }
}

/** Alternates raw and Omnibus `rounds` times and keeps the median of each. */
export async function compare(scenario: Scenario, rounds: number): Promise<Result> {
  const raw: Measurement[] = [];
  const omnibus: Measurement[] = [];
  for (let round = 0; round < rounds; round++) {
    raw.push(await measure(scenario.raw, scenario));
    omnibus.push(await measure(scenario.omnibus, scenario));
  }
  return { scenario: scenario.name, raw: median(raw), omnibus: median(omnibus) };
}

export function table(results: readonly Result[]): string {
  const rows = [
    [
      'scenario',
      'raw msg/s',
      'omnibus msg/s',
      'ratio',
      'raw p50 ms',
      'omnibus p50 ms',
      'raw p99 ms',
      'omnibus p99 ms',
      'p99 ratio',
    ],
  ];
  for (const r of results) {
    rows.push([
      r.scenario,
      fmt(r.raw.throughput, 0),
      fmt(r.omnibus.throughput, 0),
      fmt(r.omnibus.throughput / r.raw.throughput, 2),
      fmt(r.raw.p50, 3),
      fmt(r.omnibus.p50, 3),
      fmt(r.raw.p99, 3),
      fmt(r.omnibus.p99, 3),
      fmt(r.omnibus.p99 / r.raw.p99, 2),
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

function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]!;
}

function median(values: readonly Measurement[]): Measurement {
  const pick = (key: keyof Measurement) => {
    const sorted = values.map((v) => v[key]).sort((a, b) => a - b);
    return sorted[Math.floor(sorted.length / 2)]!;
  };
  return { throughput: pick('throughput'), p50: pick('p50'), p99: pick('p99') };
}

function fmt(value: number, digits: number): string {
  return value.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
}
