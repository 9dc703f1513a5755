/**
 * What instrumentation costs. `otel-<target>`: each of the target's Omnibus sides with
 * `@omnibus/opentelemetry` on (a real SDK set-up: AsyncLocalStorage context, W3C propagation, a
 * batching span processor, metrics aggregated in memory) against the same side with it off. In
 * the table, "raw" is Omnibus without instrumentation.
 *
 * `channels`: memory send→consume with core's diagnostics channels idle (nobody subscribes),
 * against the build before the channels existed, loaded from BENCH_BASELINE_CORE (a path to that
 * build's packages/core/dist/index.js; see docs/benchmarks.md for how to make it).
 */

import type { Bus } from '@omnibus/core';
import { instrumentOmnibus, type OmnibusInstrumentation } from '@omnibus/opentelemetry';
import { context, propagation } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { MeterProvider, MetricReader } from '@opentelemetry/sdk-metrics';
import { BatchSpanProcessor, type SpanExporter, TracerProvider } from '@opentelemetry/sdk-trace';
import type { Scenario, Side } from './harness.js';
import { memoryScenarios, omnibusSide } from './memory.js';

context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
propagation.setGlobalPropagator(new W3CTraceContextPropagator());

/** Finished spans go nowhere: the cost measured is making and batching them, not a network. */
const discard: SpanExporter = {
  export: (_spans, done) => done({ code: 0 }),
  shutdown: async () => undefined,
};

class KeptInMemory extends MetricReader {
  protected override async onShutdown(): Promise<void> {}
  protected override async onForceFlush(): Promise<void> {}
}

/** The same side, with instrumentation on while it runs. */
function traced(side: Side): Side {
  return {
    async setup() {
      const tracerProvider = new TracerProvider({
        spanProcessors: [new BatchSpanProcessor({ exporter: discard })],
      });
      const meterProvider = new MeterProvider({ readers: [new KeptInMemory()] });
      const instrumentation: OmnibusInstrumentation = instrumentOmnibus({ tracerProvider, meterProvider });
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
    raw: s.omnibus,
    omnibus: traced(s.omnibus),
  }));
}

/** Memory send→consume: this build (channels idle) against the build before the channels. */
export async function channelScenarios(): Promise<Scenario[]> {
  const path = process.env.BENCH_BASELINE_CORE;
  if (path === undefined)
    throw new Error('set BENCH_BASELINE_CORE to the baseline build of packages/core/dist/index.js');
  const baseline = (await import(path)) as { connect: (url: string) => Promise<Bus> };
  const queue = memoryScenarios[0]!;
  return [
    {
      ...queue,
      name: `${queue.name}: channels idle / before channels`,
      raw: { setup: () => omnibusSide('queue', (url) => baseline.connect(url)) },
      omnibus: { setup: () => omnibusSide('queue') },
    },
  ];
}
