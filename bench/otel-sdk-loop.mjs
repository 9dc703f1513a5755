/**
 * What the OpenTelemetry SDK work of one message costs with nothing else running: the calls
 * `@omnibus/opentelemetry` makes for a sent and processed message (a producer and a consumer span
 * with the same attributes, W3C inject and extract, the contexts, `context.with`, the ack event,
 * two histogram records), 200,000 times, CPU time a message for each of 5 rounds. docs/benchmarks.md
 * ("`@omnibus/opentelemetry`") compares it with what 0.9 allows. From bench/:
 * `node otel-sdk-loop.mjs` (all) or `node otel-sdk-loop.mjs traces` (without the histograms).
 */
import { context, propagation, ROOT_CONTEXT, SpanKind, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { MeterProvider, MetricReader } from '@opentelemetry/sdk-metrics';
import { BatchSpanProcessor, TracerProvider } from '@opentelemetry/sdk-trace';

context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
propagation.setGlobalPropagator(new W3CTraceContextPropagator());
class Mem extends MetricReader {
  async onShutdown() {}
  async onForceFlush() {}
}
const tp = new TracerProvider({
  spanProcessors: [
    new BatchSpanProcessor({ exporter: { export: (_s, d) => d({ code: 0 }), shutdown: async () => {} } }),
  ],
});
const mp = new MeterProvider({ readers: [new Mem()] });
const tracer = tp.getTracer('x');
const meter = mp.getMeter('x');
const h1 = meter.createHistogram('a'),
  h2 = meter.createHistogram('b');
const sa = Object.freeze({
  'messaging.system': 'memory',
  'messaging.operation.type': 'send',
  'messaging.operation.name': 'send',
  'messaging.destination.name': 'q',
});
const pa = Object.freeze({
  'messaging.system': 'memory',
  'messaging.operation.type': 'process',
  'messaging.operation.name': 'process',
  'messaging.destination.name': 'q',
});
const so = { kind: SpanKind.PRODUCER, attributes: sa };
const ack = Object.freeze({
  'messaging.operation.type': 'settle',
  'messaging.operation.name': 'ack',
  'messaging.omnibus.attempt': 1,
});
const what = process.argv[2] ?? 'all';
function one(i) {
  const headers = {};
  const parent = context.active();
  const s = tracer.startSpan('send q', so, parent);
  s.setAttribute('messaging.omnibus.destination.kind', 'queue');
  s.setAttribute('messaging.message.id', `id${i}`);
  s.setAttribute('messaging.message.body.size', 256);
  propagation.inject(trace.setSpan(parent, s), headers);
  const t0 = performance.now();
  const pctx = propagation.extract(ROOT_CONTEXT, headers);
  const creation = trace.getSpanContext(pctx);
  const p = tracer.startSpan(
    'process q',
    { kind: SpanKind.CONSUMER, attributes: pa, links: [{ context: creation }] },
    pctx,
  );
  p.setAttribute('messaging.omnibus.destination.kind', 'queue');
  p.setAttribute('messaging.message.id', `id${i}`);
  p.setAttribute('messaging.message.body.size', 256);
  p.setAttribute('messaging.omnibus.attempt', 1);
  p.setAttribute('messaging.omnibus.redelivered', false);
  const active = trace.setSpan(pctx, p);
  context.with(active, () => {});
  p.addEvent('settle ack', ack);
  if (what !== 'traces') {
    h1.record((performance.now() - t0) / 1000, sa);
    h2.record((performance.now() - t0) / 1000, pa);
  }
  p.end();
  s.end();
}
const N = 200000;
for (let r = 0; r < 5; r++) {
  const b = process.cpuUsage();
  for (let i = 0; i < N; i++) one(i);
  const u = process.cpuUsage(b);
  process.stdout.write(`${((u.user + u.system) / N).toFixed(2)} `);
}
console.log(what);
