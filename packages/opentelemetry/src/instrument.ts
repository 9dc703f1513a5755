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
  type SpanContext,
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
abstract class Target<C> {
  /** The next target of the same destination (another adapter, operation or consumer). */
  next: Target<C> | undefined;
  readonly attributes: Attributes;
  readonly options: SpanOptions;
  private readonly failed = new Map<string, Attributes>();

  constructor(
    readonly spanName: string,
    private readonly spanKind: SpanKind,
    attributes: Attributes,
  ) {
    this.attributes = Object.freeze(attributes);
    this.options = { kind: spanKind, attributes: this.attributes };
  }

  abstract matches(c: C): boolean;

  /** The span options with a link to the message's creation context. */
  linkedTo(creation: SpanContext): SpanOptions {
    return { kind: this.spanKind, attributes: this.attributes, links: [{ context: creation }] };
  }

  /** The metric attributes with `error.type`, one object per type. */
  failedWith(type: string): Attributes {
    let made = this.failed.get(type);
    if (made === undefined) {
      made = Object.freeze({ ...this.attributes, [ATTR.errorType]: type });
      this.failed.set(type, made);
    }
    return made;
  }
}

class SendTarget extends Target<SendContext> {
  readonly adapter: string;
  readonly operation: SendContext['operation'];
  readonly kind: SendContext['kind'];

  constructor(c: SendContext) {
    super(`send ${c.destination}`, SpanKind.PRODUCER, sendMetricAttributes(c));
    this.adapter = c.adapter;
    this.operation = c.operation;
    this.kind = c.kind;
  }

  matches(c: SendContext): boolean {
    return this.adapter === c.adapter && this.operation === c.operation && this.kind === c.kind;
  }
}

class ProcessTarget extends Target<ConsumedMessage> {
  /** Retries and dead letters are counted with these. */
  readonly settleAttributes: Attributes;
  readonly adapter: string;
  readonly kind: ProcessContext['kind'];
  readonly consumer: string | undefined;

  constructor(c: ConsumedMessage) {
    super(`process ${c.destination}`, SpanKind.CONSUMER, processMetricAttributes(c));
    this.adapter = c.adapter;
    this.kind = c.kind;
    this.consumer = c.consumer;
    this.settleAttributes = Object.freeze(settleMetricAttributes(c));
  }

  matches(c: ConsumedMessage): boolean {
    return this.adapter === c.adapter && this.kind === c.kind && this.consumer === c.consumer;
  }
}

/** The targets seen, per destination a short chain (one per adapter, operation, consumer seen there). */
class Targets<C extends { readonly destination: string }, T extends Target<C>> {
  private readonly byDestination = new Map<string, T>();

  constructor(private readonly make: new (c: C) => T) {}

  of(c: C): T {
    const first = this.byDestination.get(c.destination);
    for (let t: Target<C> | undefined = first; t !== undefined; t = t.next) if (t.matches(c)) return t as T;
    const made = new this.make(c);
    made.next = first;
    this.byDestination.set(c.destination, made);
    return made;
  }
}

/** One send or handler run in flight, kept on its channel context object. */
class Run<T> {
  constructor(
    readonly span: Span,
    readonly started: number,
    readonly target: T,
  ) {}
}

class ProcessRun extends Run<ProcessTarget> {
  constructor(
    span: Span,
    started: number,
    target: ProcessTarget,
    readonly context: ProcessContext,
  ) {
    super(span, started, target);
  }

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

  const sendTargets = new Targets<SendContext, SendTarget>(SendTarget);
  const processTargets = new Targets<ConsumedMessage, ProcessTarget>(ProcessTarget);

  // Settlements arrive on a plain channel without the run's context object: the runs whose span
  // records, by message id, for the retries, dead letters and requeues to find their span.
  const running = new Map<string, ProcessRun>();

  const send = {
    end: ignore,
    asyncStart: ignore,
    error: failed,
    start(message: unknown) {
      const c = message as WithRun<SendContext, Run<SendTarget>>;
      const target = sendTargets.of(c);
      const parent = context.active();
      // A creation context the application put in the headers itself is kept, and linked.
      const custom = hasAny(c.headers) && hasAnyOf(c.headers, fields());
      let spanOptions = target.options;
      if (custom) {
        const creation = trace.getSpanContext(extract(c.headers));
        if (creation !== undefined && trace.isSpanContextValid(creation))
          spanOptions = target.linkedTo(creation);
      }
      const span = tracer.startSpan(target.spanName, spanOptions, parent);
      if (span.isRecording()) setSendSpanAttributes(span, c);
      if (!custom) inject(trace.setSpan(parent, span), c.headers);
      c[RUN] = new Run(span, performance.now(), target);
    },
    asyncEnd(message: unknown) {
      const c = message as WithRun<SendContext, Run<SendTarget>>;
      const run = c[RUN];
      if (run === undefined) return;
      c[RUN] = undefined;
      const { span, target } = run;
      let attributes = target.attributes;
      if (c.error !== undefined) {
        const type = errorType(c.error);
        attributes = target.failedWith(type);
        span.setAttribute(ATTR.errorType, type);
      }
      if (c.position !== undefined && span.isRecording()) position(span, c.adapter, c.position);
      m.sent.add(attributes);
      m.operationDuration.record(seconds(run.started), attributes);
      span.end();
    },
  };

  const process = {
    end: ignore,
    asyncStart: ignore,
    // Settling failed (the dead-letter destination refused the copy, say): the broker keeps it.
    error: failed,
    start(message: unknown) {
      const c = message as WithRun<ProcessContext, ProcessRun>;
      const target = processTargets.of(c);
      // The producer's context, from the headers; none (a foreign message, a protocol without
      // headers) starts a new trace rather than joining whatever context the consumer loop has.
      const parent = hasAny(c.headers) ? extract(c.headers) : ROOT_CONTEXT;
      const creation = trace.getSpanContext(parent);
      const span = tracer.startSpan(
        target.spanName,
        creation !== undefined && trace.isSpanContextValid(creation)
          ? target.linkedTo(creation)
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
    asyncEnd(message: unknown) {
      const c = message as WithRun<ProcessContext, ProcessRun>;
      const run = c[RUN];
      if (run === undefined) return;
      c[RUN] = undefined;
      if (running.get(c.id) === run) running.delete(c.id);
      const { span, target } = run;
      let attributes = target.attributes;
      if (c.error !== undefined || c.outcome === 'retry' || c.outcome === 'deadLetter') {
        const failure = c.error ?? c.failure;
        const type = errorType(failure);
        attributes = target.failedWith(type);
        span.setAttribute(ATTR.errorType, type);
        if (c.failure !== undefined && c.error === undefined) span.recordException(asException(c.failure));
        span.setStatus({ code: SpanStatusCode.ERROR, message: messageOf(failure ?? c.outcome) });
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
      (s.outcome === 'retry' ? m.retried : m.deadLettered).add(processTargets.of(s).settleAttributes);
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

/** The `error` event of both tracing channels: the send, or the settlement, failed. */
function failed(message: unknown): void {
  const c = message as WithRun<{ readonly error?: unknown }, Run<unknown>>;
  const run = c[RUN];
  if (run === undefined) return;
  run.span.recordException(asException(c.error));
  run.span.setStatus({ code: SpanStatusCode.ERROR, message: messageOf(c.error) });
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
