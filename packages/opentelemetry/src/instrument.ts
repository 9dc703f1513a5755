/**
 * `instrumentOmnibus()`: subscribes to core's diagnostics channels (docs/instrumentation.md) and
 * turns them into spans, span events and metrics by the OpenTelemetry messaging conventions, with
 * trace context carried in each message's headers through the configured propagator.
 */
import { channel, tracingChannel } from 'node:diagnostics_channel';
import { performance } from 'node:perf_hooks';
import {
  CHANNELS,
  type ConsumedMessage,
  type ProcessContext,
  type SendContext,
  type SettleMessage,
} from '@omnibus/core';
import {
  type Attributes,
  type Context,
  context,
  defaultTextMapGetter,
  defaultTextMapSetter,
  type MeterProvider,
  metrics,
  propagation,
  ROOT_CONTEXT,
  type Span,
  SpanKind,
  type SpanOptions,
  SpanStatusCode,
  type TextMapPropagator,
  type TracerProvider,
  trace,
} from '@opentelemetry/api';
import {
  ATTR,
  errorType,
  position,
  processMetricAttributes,
  sendMetricAttributes,
  setProcessSpanAttributes,
  setSendSpanAttributes,
  settleMetricAttributes,
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

/**
 * What every message to one destination shares, made on its first message: the span name, the
 * attributes a span starts with (the metric attributes too, frozen, so the tallies and histograms
 * find them by identity), the span options. Per message there remain the ids, sizes and positions.
 */
class SendTarget {
  next: SendTarget | undefined;
  readonly spanName: string;
  readonly attributes: Attributes;
  readonly options: SpanOptions;
  readonly adapter: string;
  readonly operation: SendContext['operation'];
  readonly kind: SendContext['kind'];
  private readonly failed = new Map<string, Attributes>();

  constructor(c: SendContext) {
    this.adapter = c.adapter;
    this.operation = c.operation;
    this.kind = c.kind;
    this.spanName = `send ${c.destination}`;
    this.attributes = Object.freeze(sendMetricAttributes(c));
    this.options = { kind: SpanKind.PRODUCER, attributes: this.attributes };
  }

  matches(c: SendContext): boolean {
    return this.adapter === c.adapter && this.operation === c.operation && this.kind === c.kind;
  }

  /** The metric attributes with `error.type`. */
  failedWith(type: string): Attributes {
    return withErrorType(this.failed, this.attributes, type);
  }
}

class ProcessTarget {
  next: ProcessTarget | undefined;
  readonly spanName: string;
  readonly attributes: Attributes;
  readonly options: SpanOptions;
  /** Retries and dead letters are counted with these. */
  readonly settleAttributes: Attributes;
  private readonly failed = new Map<string, Attributes>();
  readonly adapter: string;
  readonly kind: ProcessContext['kind'];
  readonly consumer: string | undefined;

  constructor(c: ConsumedMessage) {
    this.adapter = c.adapter;
    this.kind = c.kind;
    this.consumer = c.consumer;
    this.spanName = `process ${c.destination}`;
    this.attributes = Object.freeze(processMetricAttributes(c));
    this.settleAttributes = Object.freeze(settleMetricAttributes(c));
    this.options = { kind: SpanKind.CONSUMER, attributes: this.attributes };
  }

  matches(c: ConsumedMessage): boolean {
    return this.adapter === c.adapter && this.kind === c.kind && this.consumer === c.consumer;
  }

  failedWith(type: string): Attributes {
    return withErrorType(this.failed, this.attributes, type);
  }
}

/** One send in flight, kept on its channel context object. */
class SendRun {
  constructor(
    readonly span: Span,
    readonly started: number,
    readonly target: SendTarget,
  ) {}
}

/** One handler run in flight, kept on its channel context object. */
class ProcessRun {
  constructor(
    readonly span: Span,
    readonly started: number,
    readonly target: ProcessTarget,
    readonly context: ProcessContext,
  ) {}

  /** Whether a settlement is this run's. */
  settles(s: SettleMessage): boolean {
    const c = this.context;
    return (
      c.attempt === s.attempt &&
      c.destination === s.destination &&
      c.adapter === s.adapter &&
      c.consumer === s.consumer &&
      c.clientId === s.clientId
    );
  }
}

// The channel context objects are core's; the instrumentation's state rides on them under a symbol
// (cheaper than a WeakMap on every message).
const RUN = Symbol('omnibus.opentelemetry.run');
type WithRun<C, R> = C & { [RUN]?: R | undefined };

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

  // Per destination, a short chain of targets (one per adapter, operation, consumer seen there).
  const sendTargets = new Map<string, SendTarget>();
  const processTargets = new Map<string, ProcessTarget>();
  const sendTarget = (c: SendContext): SendTarget => {
    const first = sendTargets.get(c.destination);
    for (let t = first; t !== undefined; t = t.next) if (t.matches(c)) return t;
    const made = new SendTarget(c);
    made.next = first;
    sendTargets.set(c.destination, made);
    return made;
  };
  const processTarget = (c: ConsumedMessage): ProcessTarget => {
    const first = processTargets.get(c.destination);
    for (let t = first; t !== undefined; t = t.next) if (t.matches(c)) return t;
    const made = new ProcessTarget(c);
    made.next = first;
    processTargets.set(c.destination, made);
    return made;
  };

  // Settlements arrive on a plain channel without the run's context object: the runs whose span
  // records, by message id, for the retries, dead letters and requeues to find their span.
  const running = new Map<string, ProcessRun>();

  const send = {
    end: ignore,
    asyncStart: ignore,
    start(message: unknown) {
      const c = message as WithRun<SendContext, SendRun>;
      const target = sendTarget(c);
      const parent = context.active();
      // A creation context the application put in the headers itself is kept, and linked.
      const custom = hasAny(c.headers) && hasAnyOf(c.headers, fields());
      let spanOptions = target.options;
      if (custom) {
        const creation = trace.getSpanContext(extract(c.headers));
        if (creation !== undefined && trace.isSpanContextValid(creation)) {
          spanOptions = {
            kind: SpanKind.PRODUCER,
            attributes: target.attributes,
            links: [{ context: creation }],
          };
        }
      }
      const span = tracer.startSpan(target.spanName, spanOptions, parent);
      if (span.isRecording()) setSendSpanAttributes(span, c);
      if (!custom) inject(trace.setSpan(parent, span), c.headers);
      c[RUN] = new SendRun(span, performance.now(), target);
    },
    error(message: unknown) {
      const c = message as WithRun<SendContext, SendRun>;
      const run = c[RUN];
      if (run === undefined) return;
      run.span.recordException(asException(c.error));
      run.span.setStatus({ code: SpanStatusCode.ERROR, message: messageOf(c.error) });
      run.span.setAttribute(ATTR.errorType, errorType(c.error));
    },
    asyncEnd(message: unknown) {
      const c = message as WithRun<SendContext, SendRun>;
      const run = c[RUN];
      if (run === undefined) return;
      c[RUN] = undefined;
      const { span, target } = run;
      if (c.position !== undefined && span.isRecording()) position(span, c.adapter, c.position);
      const attributes = c.error === undefined ? target.attributes : target.failedWith(errorType(c.error));
      m.sent.add(attributes);
      m.operationDuration.record(seconds(run.started), attributes);
      span.end();
    },
  };

  const process = {
    end: ignore,
    asyncStart: ignore,
    start(message: unknown) {
      const c = message as WithRun<ProcessContext, ProcessRun>;
      const target = processTarget(c);
      // The producer's context, from the headers; none (a foreign message, a protocol without
      // headers) starts a new trace rather than joining whatever context the consumer loop has.
      const parent = hasAny(c.headers) ? extract(c.headers) : ROOT_CONTEXT;
      const creation = trace.getSpanContext(parent);
      const span = tracer.startSpan(
        target.spanName,
        creation !== undefined && trace.isSpanContextValid(creation)
          ? { kind: SpanKind.CONSUMER, attributes: target.attributes, links: [{ context: creation }] }
          : target.options,
        parent,
      );
      const active = trace.setSpan(parent, span);
      c.scope = (run) => context.with(active, run);
      const run = new ProcessRun(span, performance.now(), target, c);
      c[RUN] = run;
      if (span.isRecording()) {
        setProcessSpanAttributes(span, c);
        running.set(c.id, run);
      }
      m.consumed.add(target.attributes);
      m.active.add(target.attributes);
    },
    error(message: unknown) {
      // Settling failed (the dead-letter destination refused the copy, say): the broker keeps it.
      const c = message as WithRun<ProcessContext, ProcessRun>;
      const run = c[RUN];
      if (run === undefined) return;
      run.span.recordException(asException(c.error));
      run.span.setStatus({ code: SpanStatusCode.ERROR, message: messageOf(c.error) });
    },
    asyncEnd(message: unknown) {
      const c = message as WithRun<ProcessContext, ProcessRun>;
      const run = c[RUN];
      if (run === undefined) return;
      c[RUN] = undefined;
      if (running.get(c.id) === run) running.delete(c.id);
      const { span, target } = run;
      let attributes = target.attributes;
      if (c.error !== undefined || c.outcome === 'retry' || c.outcome === 'deadLetter') {
        const failed = c.error ?? c.failure;
        const type = errorType(failed);
        attributes = target.failedWith(type);
        span.setAttribute(ATTR.errorType, type);
        if (c.failure !== undefined && c.error === undefined) span.recordException(asException(c.failure));
        span.setStatus({ code: SpanStatusCode.ERROR, message: messageOf(failed ?? c.outcome) });
      } else if (c.outcome === 'ack' && span.isRecording()) {
        // An ack says nothing the run does not know: its event is made here, not from omnibus:settle.
        span.addEvent('settle ack', c.attempt === 1 ? FIRST_ACK : ackEvent(c.attempt));
      }
      m.active.add(target.attributes, -1);
      m.processDuration.record(seconds(run.started), attributes);
      span.end();
    },
  };

  const settle = (message: unknown) => {
    const s = message as SettleMessage;
    if (s.outcome === 'ack') return;
    if (s.outcome === 'retry' || s.outcome === 'deadLetter') {
      (s.outcome === 'retry' ? m.retried : m.deadLettered).add(processTarget(s).settleAttributes);
    }
    const run = running.get(s.id);
    if (run === undefined || !run.settles(s)) return;
    const event: Attributes = {
      [ATTR.operationType]: 'settle',
      [ATTR.operationName]: s.outcome,
      [ATTR.attempt]: s.attempt,
    };
    if (s.reason !== undefined) event[ATTR.settleReason] = s.reason;
    if (s.delayMs !== undefined) event[ATTR.retryDelayMs] = s.delayMs;
    if (s.deadLetter !== undefined) event[ATTR.deadLetter] = s.deadLetter;
    run.span.addEvent(`settle ${s.outcome}`, event);
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

const FIRST_ACK: Attributes = Object.freeze(ackEvent(1));

function ackEvent(attempt: number): Attributes {
  return { [ATTR.operationType]: 'settle', [ATTR.operationName]: 'ack', [ATTR.attempt]: attempt };
}

function withErrorType(cache: Map<string, Attributes>, attributes: Attributes, type: string): Attributes {
  let made = cache.get(type);
  if (made === undefined) {
    made = Object.freeze({ ...attributes, [ATTR.errorType]: type });
    cache.set(type, made);
  }
  return made;
}

/** Whether an object has an own enumerable key (most messages carry no headers). */
function hasAny(headers: Readonly<Record<string, string>>): boolean {
  for (const _ in headers) return true;
  return false;
}

function hasAnyOf(headers: Readonly<Record<string, string>>, names: readonly string[]): boolean {
  for (const name of names) if (headers[name] !== undefined) return true;
  return false;
}

function ignore(): void {}

function seconds(startedMs: number): number {
  return (performance.now() - startedMs) / 1000;
}

function asException(error: unknown): Error | string {
  return error instanceof Error ? error : String(error);
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
