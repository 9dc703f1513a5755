/**
 * `instrumentOmnibus()`: subscribes to core's diagnostics channels (docs/instrumentation.md) and
 * turns them into spans, span events and metrics by the OpenTelemetry messaging conventions, with
 * trace context carried in each message's headers through the configured propagator.
 */
import { channel, tracingChannel } from 'node:diagnostics_channel';
import { performance } from 'node:perf_hooks';
import { CHANNELS, type ProcessContext, type SendContext, type SettleMessage } from '@omnibus/core';
import {
  type Attributes,
  type Context,
  context,
  defaultTextMapGetter,
  defaultTextMapSetter,
  type Link,
  type MeterProvider,
  metrics,
  propagation,
  ROOT_CONTEXT,
  type Span,
  SpanKind,
  SpanStatusCode,
  type TextMapPropagator,
  type TracerProvider,
  trace,
} from '@opentelemetry/api';
import {
  ATTR,
  errorType,
  messagingSystem,
  position,
  processMetricAttributes,
  processSpanAttributes,
  sendMetricAttributes,
  sendSpanAttributes,
} from './attributes.js';
import { createInstruments, type Instruments } from './metrics.js';

export interface InstrumentOmnibusOptions {
  /** Where spans go. @default the global tracer provider (`trace.getTracerProvider()`) */
  readonly tracerProvider?: TracerProvider;
  /** Where metrics go. @default the global meter provider (`metrics.getMeterProvider()`) */
  readonly meterProvider?: MeterProvider;
  /**
   * Injects trace context into sent headers and extracts it from received ones.
   * @default the global propagator (`propagation`): W3C `traceparent`/`tracestate` once the
   * application registers it (the OpenTelemetry Node SDK does by default)
   */
  readonly propagator?: TextMapPropagator;
}

export interface OmnibusInstrumentation {
  /** Unsubscribes from every channel: no more spans or metrics. Safe to call more than once. */
  disable(): void;
}

const NAME = '@omnibus/opentelemetry';
const VERSION = '0.1.0';
// One instrumentation per process, even with two copies of this package installed: channels are
// global by name, so two subscribers would record every message twice.
const ACTIVE = Symbol.for('omnibus.opentelemetry.active');
type Global = typeof globalThis & { [ACTIVE]?: OmnibusInstrumentation };

/**
 * Turns the instrumentation on. Calling it again replaces the previous instrumentation (the last
 * options win); a message is never recorded twice.
 */
export function instrumentOmnibus(options: InstrumentOmnibusOptions = {}): OmnibusInstrumentation {
  const global = globalThis as Global;
  global[ACTIVE]?.disable();
  const unsubscribe = subscribe(options);
  let enabled = true;
  const instrumentation: OmnibusInstrumentation = {
    disable() {
      if (!enabled) return;
      enabled = false;
      unsubscribe();
      if (global[ACTIVE] === instrumentation) delete global[ACTIVE];
    },
  };
  global[ACTIVE] = instrumentation;
  return instrumentation;
}

interface SendState {
  readonly span: Span;
  readonly started: number;
}

interface ProcessState {
  readonly span: Span;
  readonly started: number;
  readonly metricKey: string;
  readonly metricAttributes: Attributes;
  readonly settleKey: string;
}

function subscribe(options: InstrumentOmnibusOptions): () => void {
  const tracer = (options.tracerProvider ?? trace.getTracerProvider()).getTracer(NAME, VERSION);
  const meter = (options.meterProvider ?? metrics.getMeterProvider()).getMeter(NAME, VERSION);
  const m: Instruments = createInstruments(meter);
  const propagator = options.propagator;
  const inject = (ctx: Context, carrier: Record<string, string>) =>
    propagator === undefined
      ? propagation.inject(ctx, carrier)
      : propagator.inject(ctx, carrier, defaultTextMapSetter);
  const extract = (carrier: Readonly<Record<string, string>>) =>
    propagator === undefined
      ? propagation.extract(ROOT_CONTEXT, carrier)
      : propagator.extract(ROOT_CONTEXT, carrier, defaultTextMapGetter);
  const fields = () => (propagator === undefined ? propagation.fields() : propagator.fields());

  // Metric attribute sets, one frozen object per set, found by a key made of a few strings.
  const attributeSets = new Map<string, Attributes>();
  const cached = (key: string, make: () => Attributes): Attributes => {
    let attributes = attributeSets.get(key);
    if (attributes === undefined) {
      attributes = Object.freeze(make());
      attributeSets.set(key, attributes);
    }
    return attributes;
  };

  const sends = new WeakMap<object, SendState>();
  const runs = new WeakMap<object, ProcessState>();
  // Settlements arrive on a plain channel without the run's context object: find its span by message.
  const running = new Map<string, Span>();

  const send = {
    end: ignore,
    asyncStart: ignore,
    start(message: unknown) {
      const c = message as SendContext;
      const parent = context.active();
      const links: Link[] = [];
      // A creation context the application put in the headers itself is kept, and linked.
      const custom = fields().some((field) => c.headers[field] !== undefined);
      if (custom) {
        const creation = trace.getSpanContext(extract(c.headers));
        if (creation !== undefined && trace.isSpanContextValid(creation)) links.push({ context: creation });
      }
      const span = tracer.startSpan(
        `send ${c.destination}`,
        { kind: SpanKind.PRODUCER, attributes: sendSpanAttributes(c), links },
        parent,
      );
      if (!custom) inject(trace.setSpan(parent, span), c.headers);
      sends.set(c, { span, started: performance.now() });
    },
    error(message: unknown) {
      const c = message as SendContext;
      const state = sends.get(c);
      if (state === undefined) return;
      state.span.recordException(asException(c.error));
      state.span.setStatus({ code: SpanStatusCode.ERROR, message: messageOf(c.error) });
      state.span.setAttribute(ATTR.errorType, errorType(c.error));
    },
    asyncEnd(message: unknown) {
      const c = message as SendContext;
      const state = sends.get(c);
      if (state === undefined) return;
      sends.delete(c);
      if (c.position !== undefined) {
        const attributes: Attributes = {};
        position(attributes, c.adapter, c.position);
        state.span.setAttributes(attributes);
      }
      const error = c.error === undefined ? '' : errorType(c.error);
      const key = `${c.adapter}\u0000${c.operation}\u0000${c.destination}\u0000${error}`;
      const attributes = cached(key, () => {
        const made = sendMetricAttributes(c);
        if (error !== '') made[ATTR.errorType] = error;
        return made;
      });
      m.sent.add(key, attributes);
      m.operationDuration.record(seconds(state.started), attributes);
      state.span.end();
    },
  };

  const process = {
    end: ignore,
    asyncStart: ignore,
    start(message: unknown) {
      const c = message as ProcessContext;
      // The producer's context, from the headers; none (a foreign message, a protocol without
      // headers) starts a new trace rather than joining whatever context the consumer loop has.
      const parent = extract(c.headers);
      const creation = trace.getSpanContext(parent);
      const links: Link[] =
        creation !== undefined && trace.isSpanContextValid(creation) ? [{ context: creation }] : [];
      const span = tracer.startSpan(
        `process ${c.destination}`,
        { kind: SpanKind.CONSUMER, attributes: processSpanAttributes(c), links },
        parent,
      );
      const active = trace.setSpan(parent, span);
      c.scope = (run) => context.with(active, run);
      const metricKey = `${c.adapter}\u0000${c.kind}\u0000${c.destination}\u0000${c.consumer ?? ''}`;
      const metricAttributes = cached(metricKey, () => processMetricAttributes(c));
      const settleKey = keyOf(c.adapter, c.destination, c.consumer, c.id, c.attempt);
      running.set(settleKey, span);
      runs.set(c, { span, started: performance.now(), metricKey, metricAttributes, settleKey });
      m.consumed.add(metricKey, metricAttributes);
      m.active.add(metricKey, metricAttributes);
    },
    error(message: unknown) {
      // Settling failed (the dead-letter destination refused the copy, say): the broker keeps it.
      const c = message as ProcessContext;
      const state = runs.get(c);
      if (state === undefined) return;
      state.span.recordException(asException(c.error));
      state.span.setStatus({ code: SpanStatusCode.ERROR, message: messageOf(c.error) });
    },
    asyncEnd(message: unknown) {
      const c = message as ProcessContext;
      const state = runs.get(c);
      if (state === undefined) return;
      runs.delete(c);
      running.delete(state.settleKey);
      const { span } = state;
      let attributes = state.metricAttributes;
      const failed = c.error ?? (c.outcome === 'retry' || c.outcome === 'deadLetter' ? c.failure : undefined);
      if (c.error !== undefined || c.outcome === 'retry' || c.outcome === 'deadLetter') {
        const type = errorType(failed);
        attributes = cached(`${state.metricKey}\u0000${type}`, () => ({
          ...state.metricAttributes,
          [ATTR.errorType]: type,
        }));
        span.setAttribute(ATTR.errorType, type);
        if (c.failure !== undefined && c.error === undefined) span.recordException(asException(c.failure));
        span.setStatus({ code: SpanStatusCode.ERROR, message: messageOf(failed ?? c.outcome) });
      }
      m.active.add(state.metricKey, state.metricAttributes, -1);
      m.processDuration.record(seconds(state.started), attributes);
      span.end();
    },
  };

  const settle = (message: unknown) => {
    const s = message as SettleMessage;
    const span = running.get(keyOf(s.adapter, s.destination, s.consumer, s.id, s.attempt));
    if (s.outcome === 'retry' || s.outcome === 'deadLetter') {
      const key = `settle\u0000${s.adapter}\u0000${s.kind}\u0000${s.destination}\u0000${s.consumer ?? ''}`;
      const attributes = cached(key, () => {
        const made: Attributes = {
          [ATTR.system]: messagingSystem(s.adapter),
          [ATTR.destination]: s.destination,
        };
        if (s.consumer !== undefined)
          made[s.kind === 'topic' ? ATTR.subscription : ATTR.consumerGroup] = s.consumer;
        return made;
      });
      (s.outcome === 'retry' ? m.retried : m.deadLettered).add(key, attributes);
    }
    if (span === undefined) return;
    const event: Attributes = {
      [ATTR.operationType]: 'settle',
      [ATTR.operationName]: s.outcome,
      [ATTR.attempt]: s.attempt,
    };
    if (s.reason !== undefined) event[ATTR.settleReason] = s.reason;
    if (s.delayMs !== undefined) event[ATTR.retryDelayMs] = s.delayMs;
    if (s.deadLetter !== undefined) event[ATTR.deadLetter] = s.deadLetter;
    span.addEvent(`settle ${s.outcome}`, event);
  };

  const sendChannel = tracingChannel(CHANNELS.send);
  const processChannel = tracingChannel(CHANNELS.process);
  const settleChannel = channel(CHANNELS.settle);
  sendChannel.subscribe(send);
  processChannel.subscribe(process);
  settleChannel.subscribe(settle);
  return () => {
    sendChannel.unsubscribe(send);
    processChannel.unsubscribe(process);
    settleChannel.unsubscribe(settle);
    running.clear();
  };
}

function ignore(): void {}

function keyOf(
  adapter: string,
  destination: string,
  consumer: string | undefined,
  id: string,
  attempt: number,
): string {
  return `${adapter}\u0000${destination}\u0000${consumer ?? ''}\u0000${id}\u0000${attempt}`;
}

function seconds(startedMs: number): number {
  return (performance.now() - startedMs) / 1000;
}

function asException(error: unknown): Error | string {
  return error instanceof Error ? error : String(error);
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
