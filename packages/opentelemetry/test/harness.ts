/**
 * The OpenTelemetry SDK set up in memory for the tests: spans into an InMemorySpanExporter, metrics
 * read on demand, W3C trace context, and context through AsyncLocalStorage. Each test gets a fresh
 * provider pair and a fresh `instrumentOmnibus()` (which replaces the previous one).
 */
import { delay } from '@omnibus/core';
import { context, propagation } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import {
  type DataPoint,
  type Histogram,
  MeterProvider,
  MetricReader,
  type ResourceMetrics,
} from '@opentelemetry/sdk-metrics';
import {
  InMemorySpanExporter,
  type ReadableSpan,
  SimpleSpanProcessor,
  TracerProvider,
} from '@opentelemetry/sdk-trace';
import { instrumentOmnibus, type OmnibusInstrumentation } from '../src/index.js';

context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
propagation.setGlobalPropagator(new W3CTraceContextPropagator());

/** A reader that collects only when asked. */
class TestMetricReader extends MetricReader {
  protected override async onShutdown(): Promise<void> {}
  protected override async onForceFlush(): Promise<void> {}
}

export interface Telemetry {
  readonly exporter: InMemorySpanExporter;
  readonly tracerProvider: TracerProvider;
  readonly instrumentation: OmnibusInstrumentation;
  spans(): ReadableSpan[];
  /** Waits until `count` finished spans match. */
  waitForSpans(
    match: (span: ReadableSpan) => boolean,
    count: number,
    timeoutMs?: number,
  ): Promise<ReadableSpan[]>;
  /** The sum of a counter (or the count of a histogram) over its points matching `attributes`. */
  metric(name: string, attributes?: Record<string, unknown>): Promise<number>;
  shutdown(): Promise<void>;
}

export function setUpTelemetry(): Telemetry {
  const exporter = new InMemorySpanExporter();
  const tracerProvider = new TracerProvider({ spanProcessors: [new SimpleSpanProcessor({ exporter })] });
  const reader = new TestMetricReader();
  const meterProvider = new MeterProvider({ readers: [reader] });
  const instrumentation = instrumentOmnibus({ tracerProvider, meterProvider });
  const spans = () => exporter.getFinishedSpans();
  return {
    exporter,
    tracerProvider,
    instrumentation,
    spans,
    async waitForSpans(match, count, timeoutMs = 20_000) {
      await until(
        () => spans().filter(match).length >= count,
        timeoutMs,
        () => describeSpans(spans()),
      );
      return spans().filter(match);
    },
    async metric(name, attributes = {}) {
      const { resourceMetrics } = await reader.collect();
      return sumOf(resourceMetrics, name, attributes);
    },
    async shutdown() {
      instrumentation.disable();
      await tracerProvider.shutdown();
      await meterProvider.shutdown();
    },
  };
}

function sumOf(metrics: ResourceMetrics, name: string, attributes: Record<string, unknown>): number {
  let total = 0;
  for (const scope of metrics.scopeMetrics) {
    for (const metric of scope.metrics) {
      if (metric.descriptor.name !== name) continue;
      for (const point of metric.dataPoints as DataPoint<number | Histogram>[]) {
        const matches = Object.entries(attributes).every(([k, v]) => point.attributes[k] === v);
        if (!matches) continue;
        total += typeof point.value === 'number' ? point.value : point.value.count;
      }
    }
  }
  return total;
}

export async function until(
  condition: () => boolean | Promise<boolean>,
  timeoutMs: number,
  what?: () => string,
): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms${what ? `: ${what()}` : ''}`);
    await delay(10);
  }
}

function describeSpans(spans: ReadableSpan[]): string {
  return `finished spans: ${spans.map((s) => s.name).join(', ') || 'none'}`;
}

/** A W3C traceparent for a span context. */
export function traceparentOf(span: ReadableSpan): string {
  const c = span.spanContext();
  return `00-${c.traceId}-${c.spanId}-0${c.traceFlags}`;
}
