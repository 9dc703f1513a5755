/**
 * What instrumentation costs. `otel-<target>`: each of the target's Omnibus sides with
 * `@omnibus/opentelemetry` on against the same side with it off, in a process set up as the
 * OpenTelemetry Node SDK sets one up (both sides): AsyncLocalStorage context, W3C propagation, the
 * default parent-based always-on sampler, a `BatchSpanProcessor` with its defaults and a
 * `PeriodicExportingMetricReader` with its default interval, both into exporters that discard (the
 * cost measured is making, batching and aggregating, not serializing or a network). In the table,
 * "raw" is Omnibus without instrumentation.
 *
 * `channels`: memory send→consume with core's diagnostics channels idle (nobody subscribes),
 * against a copy of this very build with the channels compiled out (`withoutChannels`: every
 * `hasSubscribers` check becomes `false`, so the channel code is dead and V8 drops it).
 * BENCH_BASELINE_CORE, a path to another build's packages/core/dist/index.js, replaces the copy.
 */

import { fork } from 'node:child_process';
import { cpSync, mkdirSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Bus } from '@omnibus/core';
import { instrumentOmnibus, type OmnibusInstrumentation } from '@omnibus/opentelemetry';
import { context, metrics, propagation, ROOT_CONTEXT, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import {
  MeterProvider,
  PeriodicExportingMetricReader,
  type PushMetricExporter,
} from '@opentelemetry/sdk-metrics';
import {
  BatchSpanProcessor,
  ParentBasedSampler,
  type Sampler,
  type SpanExporter,
  TraceIdRatioBasedSampler,
  TracerProvider,
} from '@opentelemetry/sdk-trace';
import type { Runner, Scenario, Side } from './harness.js';
import { memoryScenarios, omnibusSide } from './memory.js';

context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
propagation.setGlobalPropagator(new W3CTraceContextPropagator());
// Node 20's AsyncLocalStorage turns on its promise hooks at its first `run`, and leaves them on: every
// promise of the process then costs more. In an application with the SDK that happens at its first
// traced request, whatever else is instrumented; here it happens now, so that every round, on or off,
// runs with them (else the first "off" round alone would run without). BENCH_OTEL_ALS=lazy leaves it
// to the first instrumented message.
if (process.env.BENCH_OTEL_ALS !== 'lazy') context.with(ROOT_CONTEXT, () => undefined);

/** Finished spans go nowhere: the cost measured is making and batching them, not a network. */
const discard: SpanExporter = {
  export: (_spans, done) => done({ code: 0 }),
  shutdown: async () => undefined,
};

/** Collected metrics go nowhere, likewise. */
const discardMetrics: PushMetricExporter = {
  export: (_metrics, done) => done({ code: 0 }),
  forceFlush: async () => undefined,
  shutdown: async () => undefined,
};

/**
 * BENCH_OTEL_SAMPLE, a ratio (`0.1`), samples as users configure it: parent-based, a new trace
 * sampled at that ratio. Unset: the SDK's default, every span recorded.
 */
function sampler(): Sampler | undefined {
  const ratio = process.env.BENCH_OTEL_SAMPLE;
  if (ratio === undefined) return undefined;
  return new ParentBasedSampler({ root: new TraceIdRatioBasedSampler(Number(ratio)) });
}

/** The same side, with instrumentation on while it runs. */
function traced(side: Side): Side {
  return {
    async setup() {
      const sampling = sampler();
      const tracerProvider = new TracerProvider({
        spanProcessors: [new BatchSpanProcessor({ exporter: discard })],
        ...(sampling === undefined ? {} : { sampler: sampling }),
      });
      const meterProvider = new MeterProvider({
        readers: [new PeriodicExportingMetricReader({ exporter: discardMetrics })],
      });
      // BENCH_OTEL_ONLY=metrics|traces|none leaves the other (or both) to the API's no-op providers,
      // to tell apart what each part costs.
      const only = process.env.BENCH_OTEL_ONLY;
      const instrumentation: OmnibusInstrumentation = instrumentOmnibus({
        tracerProvider: only === undefined || only === 'traces' ? tracerProvider : trace.getTracerProvider(),
        meterProvider: only === undefined || only === 'metrics' ? meterProvider : metrics.getMeterProvider(),
      });
      const runner = await side.setup();
      return {
        throughput: (count, depth) => runner.throughput(count, depth),
        roundTrip: () => runner.roundTrip(),
        async close() {
          await runner.close();
          instrumentation.disable();
          await tracerProvider.shutdown();
          await meterProvider.shutdown();
        },
      };
    },
  };
}

export function tracingScenarios(scenarios: readonly Scenario[]): Scenario[] {
  return scenarios.map((s) => ({
    ...s,
    name: `${s.name}: OpenTelemetry on / off`,
    raw: cpuLogged(s.omnibus, `${s.name}, off`),
    omnibus: cpuLogged(traced(s.omnibus), `${s.name}, on`),
  }));
}

/**
 * The side, printing the process's CPU time a message of each timed throughput round (not the
 * warm-up): what this process spends, which the machine's other load disturbs far less than
 * throughput. The broker's own work is in another process and not counted.
 */
function cpuLogged(side: Side, label: string): Side {
  return {
    async setup() {
      const runner = await side.setup();
      return {
        async throughput(count) {
          const before = process.cpuUsage();
          await runner.throughput(count);
          const used = process.cpuUsage(before);
          if (count > 1000) {
            console.error(`    ${label}: ${((used.user + used.system) / count).toFixed(1)} µs CPU a message`);
          }
        },
        roundTrip: () => runner.roundTrip(),
        close: () => runner.close(),
      };
    },
  };
}

/**
 * Memory send→consume: this build (channels idle) against the same build without the channels. Each
 * side runs in a child process of its own: two copies of core in one process measured 0.45–0.55
 * for whichever ran second (and 0.99 for one copy against itself), so one process cannot compare
 * two builds. The latency columns include the IPC round trip to the child.
 */
export async function channelScenarios(): Promise<Scenario[]> {
  const path = process.env.BENCH_BASELINE_CORE ?? withoutChannels();
  const queue = memoryScenarios[0]!;
  return [
    {
      ...queue,
      name: `${queue.name}: channels idle / compiled out`,
      raw: inChild(path, 'compiled out'),
      omnibus: inChild(undefined, 'channels idle'),
    },
  ];
}

type ChildRequest =
  | { op: 'setup' }
  | { op: 'throughput'; count: number }
  | { op: 'roundTrip' }
  | { op: 'close' };
const CHILD_CORE = 'OMNIBUS_BENCH_CHILD_CORE';

/** A side that runs memory send→consume in a child process, with `core` or this build's core. */
function inChild(core: string | undefined, label: string): Side {
  return {
    async setup(): Promise<Runner> {
      const child = fork(fileURLToPath(import.meta.url), {
        env: { ...process.env, [CHILD_CORE]: core ?? '@omnibus/core' },
        stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      });
      let waiting: { resolve: () => void; reject: (error: Error) => void } | undefined;
      let cpu = 0;
      child.on('message', (reply: { ok: boolean; error?: string; cpu?: number }) => {
        if (reply.cpu !== undefined) cpu = reply.cpu;
        const w = waiting;
        waiting = undefined;
        if (reply.ok) w?.resolve();
        else w?.reject(new Error(reply.error));
      });
      child.on('exit', (code) => waiting?.reject(new Error(`bench child exited with ${code}`)));
      const ask = (request: ChildRequest) =>
        new Promise<void>((resolve, reject) => {
          waiting = { resolve, reject };
          child.send(request);
        });
      await ask({ op: 'setup' });
      return {
        async throughput(count) {
          await ask({ op: 'throughput', count });
          // The timed round (not the warm-up): CPU time per message, which the machine's other load
          // disturbs far less than throughput.
          if (count > 1000)
            console.error(`    ${label}: ${((cpu / count) * 1000).toFixed(2)} µs CPU a message`);
        },
        roundTrip: () => ask({ op: 'roundTrip' }),
        async close() {
          await ask({ op: 'close' });
          child.disconnect();
        },
      };
    },
  };
}

/** The child's side of `inChild`: one runner, driven by the parent's requests. */
async function serveChild(core: string): Promise<void> {
  const built = (await import(core)) as { connect: (url: string) => Promise<Bus> };
  let runner: Runner | undefined;
  process.on('message', async (request: ChildRequest) => {
    try {
      if (request.op === 'setup') runner = await omnibusSide('queue', (url) => built.connect(url));
      else if (request.op === 'throughput') {
        const before = process.cpuUsage();
        await runner!.throughput(request.count);
        const used = process.cpuUsage(before);
        process.send!({ ok: true, cpu: (used.user + used.system) / 1000 });
        return;
      } else if (request.op === 'roundTrip') await runner!.roundTrip();
      else await runner!.close();
      process.send!({ ok: true });
    } catch (error) {
      process.send!({ ok: false, error: String(error) });
    }
  });
}

const childCore = process.env[CHILD_CORE];
if (childCore !== undefined && process.send !== undefined) await serveChild(childCore);

/**
 * Each edit that compiles the channels out of core's build: the `hasSubscribers` checks become
 * `false` (so the publishing code is dead), and in the consumer the run's channel message is always
 * absent. `count` is how many times it must apply: a core change that moves the channel code makes
 * this fail rather than measure a half-edited build.
 */
const COMPILE_OUT: readonly { file: string; from: RegExp; to: string; count: number }[] = [
  { file: 'bus.js', from: /\bsendChannel\.hasSubscribers\b/g, to: 'false', count: 1 },
  { file: 'connection.js', from: /\bconnectionChannel\.hasSubscribers\b/g, to: 'false', count: 1 },
  { file: 'consumer.js', from: /\bprocessChannel\.hasSubscribers\b/g, to: 'false', count: 1 },
  { file: 'consumer.js', from: /\bsettleChannel\.hasSubscribers\b/g, to: 'false', count: 2 },
  { file: 'consumer.js', from: /\btraced !== undefined\b/g, to: 'false', count: 5 },
  { file: 'consumer.js', from: /\btraced\?\.scope\b/g, to: 'undefined', count: 1 },
];

/**
 * A copy of this build of core (packages/core/dist) with the diagnostics channels compiled out,
 * in a temporary directory whose node_modules points at core's own; returns its index.js. The copy
 * differs from the build it is compared with by the edits of COMPILE_OUT only.
 */
export function withoutChannels(): string {
  const require = createRequire(import.meta.url);
  const dist = dirname(require.resolve('@omnibus/core'));
  const root = join(tmpdir(), `omnibus-core-without-channels-${process.pid}`);
  rmSync(root, { recursive: true, force: true });
  mkdirSync(root, { recursive: true });
  process.once('exit', () => rmSync(root, { recursive: true, force: true }));
  cpSync(dist, join(root, 'dist'), { recursive: true });
  writeFileSync(join(root, 'package.json'), JSON.stringify({ type: 'module' }));
  symlinkSync(join(dist, '..', 'node_modules'), join(root, 'node_modules'));
  const files = new Set(COMPILE_OUT.map((edit) => edit.file));
  for (const file of files) {
    const at = join(root, 'dist', file);
    let text = readFileSync(at, 'utf8');
    for (const edit of COMPILE_OUT.filter((e) => e.file === file)) {
      const found = text.match(edit.from)?.length ?? 0;
      if (found !== edit.count) {
        throw new Error(
          `${file}: ${edit.from} found ${found} times, expected ${edit.count}; update COMPILE_OUT`,
        );
      }
      text = text.replace(edit.from, edit.to);
    }
    writeFileSync(at, text);
  }
  if (!readdirSync(join(root, 'dist')).includes('index.js')) throw new Error(`no index.js in ${dist}`);
  return join(root, 'dist', 'index.js');
}
