/**
 * The bus: validation, capability checks, encoding and the retry policy are done here (and in its
 * handles, handles.ts), once, before an adapter sees anything.
 */
import type { Adapter, Deliver, OutgoingMessage, Subscription } from './adapter.js';
import { assertCapability, type Capabilities } from './capabilities.js';
import { type Codec, encodePayload } from './codec.js';
import type { ResolvedConnectOptions } from './config.js';
import type { Connection } from './connection.js';
import { ConsumerEngine, type Gather } from './consumer.js';
import { DeadLettersImpl } from './dead-letters.js';
import { type DestinationKind, type SendContext, sendChannel } from './diagnostics.js';
import { HEADER } from './envelope.js';
import { ClosedError, UnsupportedCapabilityError, ValidationError } from './errors.js';
import { LogHandle, QueueHandle, TopicHandle } from './handles.js';
import { validateHeaders } from './headers.js';
import { newId } from './ids.js';
import { unknownKeys } from './options.js';
import { CONSUME_OPTIONS, DEFAULT_HANDLER_TIMEOUT_MS, positiveInt, retryPolicy } from './policy.js';
import { validateName } from './routing.js';
import type { StandardSchemaV1 } from './schema.js';
import type {
  Bus,
  BusEvents,
  ConsumeOptions,
  Consumer,
  DeadLetterSource,
  DeadLetters,
  DestinationOptions,
  Handler,
  Health,
  Log,
  LogOptions,
  LogPosition,
  Queue,
  QueueOptions,
  RetryPolicy,
  Topic,
  TopicOptions,
} from './types.js';

export class BusImpl implements Bus {
  readonly adapter: string;
  readonly capabilities: Capabilities;
  private readonly consumers = new Set<ConsumerEngine<unknown>>();
  private closing: Promise<void> | undefined;

  constructor(
    private readonly driver: Adapter,
    readonly connection: Connection,
    readonly options: ResolvedConnectOptions,
  ) {
    this.adapter = driver.name;
    this.capabilities = driver.capabilities;
  }

  get closed(): boolean {
    return this.closing !== undefined;
  }

  queue<T = unknown, TIn = T>(name: string, options: QueueOptions<T, TIn> = {}): Queue<T, TIn> {
    this.assertOpen();
    this.feature('queue', 'use a topic with a durable subscription, or a broker with queues');
    return new QueueHandle<T, TIn>(this, validateName('queue', name), options);
  }

  topic<T = unknown, TIn = T>(name: string, options: TopicOptions<T, TIn> = {}): Topic<T, TIn> {
    this.assertOpen();
    this.feature('topic', 'use a queue per subscriber, or a broker with topics');
    return new TopicHandle<T, TIn>(this, validateName('topic', name), options);
  }

  log<T = unknown, TIn = T>(name: string, options: LogOptions<T, TIn> = {}): Log<T, TIn> {
    this.assertOpen();
    this.feature('log', 'use a broker with logs or streams (Kafka, RabbitMQ streams, memory)');
    return new LogHandle<T, TIn>(this, validateName('log', name), options);
  }

  deadLetters(source: DeadLetterSource): DeadLetters {
    this.assertOpen();
    this.feature('deadLetter', 'settle failing messages in the handler');
    return new DeadLettersImpl(this, source);
  }

  health(): Health {
    return {
      adapter: this.adapter,
      state: this.connection.state,
      since: this.connection.since,
      pendingSends: this.connection.waiting,
      consumers: [...this.consumers].map((c) => c.health()),
    };
  }

  on<E extends keyof BusEvents>(event: E, listener: BusEvents[E]): () => void {
    return this.connection.on(event, listener);
  }

  close(): Promise<void> {
    this.closing ??= this.shutdown();
    return this.closing;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  private async shutdown(): Promise<void> {
    await Promise.all([...this.consumers].map((c) => c.close()));
    await this.connection.settled(this.options.closeTimeoutMs);
    this.connection.setState('closed');
    try {
      await this.driver.close();
    } catch (error) {
      this.connection.reportError(error instanceof Error ? error : new Error(String(error)));
    }
  }

  assertOpen(): void {
    if (this.closing !== undefined) throw new ClosedError('the bus is closed', { adapter: this.adapter });
  }

  feature(name: Parameters<typeof assertCapability>[2], hint: string): void {
    assertCapability(this.adapter, this.capabilities, name, hint);
  }

  /** The adapter, for a semantic whose capability was checked. */
  get driverFor(): Adapter {
    return this.driver;
  }

  /** Validates the options and encodes a payload (already checked against its schema) into an outgoing message. */
  outgoing<T>(
    destination: string,
    codec: Codec<T>,
    payload: T,
    options: {
      readonly id?: string;
      readonly headers?: Record<string, string>;
      readonly key?: string;
      readonly subject?: string;
    },
    /** When it is sent: now, or the time a batch was handed over (one reading for its messages). */
    timestamp: number = Date.now(),
  ): Mutable<OutgoingMessage> {
    this.assertOpen();
    if (options.id !== undefined || options.headers !== undefined || options.key !== undefined) {
      const issues = validateHeaders(options.headers);
      if (
        options.id !== undefined &&
        (typeof options.id !== 'string' || options.id === '' || options.id.length > 200)
      ) {
        issues.push('id must be a non-empty string of at most 200 characters');
      }
      if (options.key !== undefined && (typeof options.key !== 'string' || options.key.length > 1024)) {
        issues.push('key must be a string of at most 1024 characters');
      }
      if (issues.length > 0) throw new ValidationError(`invalid options for "${destination}"`, issues);
      if (options.headers !== undefined && Object.keys(options.headers).length > 0) {
        this.feature('headers', 'put the values in the payload instead');
      }
    }
    const body = encodePayload(codec, payload, destination);
    const max = this.capabilities.limits.maxMessageBytes;
    if (max !== undefined && body.byteLength > max) {
      throw new ValidationError(
        `message for "${destination}" is ${body.byteLength} bytes; ${this.adapter} accepts at most ${max}`,
      );
    }
    const maxHeader = this.capabilities.limits.maxHeaderBytes;
    // Only what the caller gave can be too long (core's own entries are short): most sends give none.
    if (
      maxHeader !== undefined &&
      (options.id !== undefined ||
        options.key !== undefined ||
        options.subject !== undefined ||
        options.headers !== undefined)
    ) {
      this.checkHeaderSizes(destination, maxHeader, options);
    }
    const message: Mutable<OutgoingMessage> = {
      id: options.id ?? newId(),
      body,
      headers: options.headers ?? {},
      contentType: codec.contentType,
      timestamp,
    };
    if (options.key !== undefined) message.key = options.key;
    if (options.subject !== undefined) message.subject = options.subject;
    return message;
  }

  /**
   * Runs a send inside the `omnibus:send` tracing channel when someone listens. The message gets
   * its own headers object first, so what an instrumentation adds in `start` travels with it.
   */
  traceSend<R>(
    kind: DestinationKind,
    operation: SendContext['operation'],
    destination: string,
    message: Mutable<OutgoingMessage>,
    send: () => Promise<R>,
  ): Promise<R> {
    if (!sendChannel.hasSubscribers) return send();
    // Copied entry by entry (see toHeaders: a spread that then gets the trace context entries is slow).
    const headers: Record<string, string> = {};
    for (const name in message.headers) headers[name] = message.headers[name]!;
    message.headers = headers;
    const context: SendContext = {
      adapter: this.adapter,
      clientId: this.options.clientId,
      kind,
      operation,
      destination,
      id: message.id,
      key: message.key,
      subject: message.subject,
      priority: message.priority,
      delayMs: message.delayMs,
      bodySize: message.body.byteLength,
      headers: this.capabilities.headers === 'none' ? {} : headers,
    };
    // Only an append has something to add before `asyncEnd` (its position): the others trace the
    // send itself, without a wrapper (each extra promise costs more while an AsyncLocalStorage, as
    // OpenTelemetry's context manager, is enabled).
    if (operation !== 'append') return sendChannel.tracePromise(send, context);
    return sendChannel.tracePromise(positioned, context, undefined, send, context);
  }

  /** Refuses a header (or an id, key or subject, which travel as headers) the protocol cannot carry. */
  private checkHeaderSizes(
    destination: string,
    max: number,
    options: {
      readonly id?: string;
      readonly headers?: Record<string, string>;
      readonly key?: string;
      readonly subject?: string;
    },
  ): void {
    // Short enough at 3 bytes a UTF-16 unit (the common case, every publish with a subject): done,
    // without the closure and arrays of the exact count below.
    if (
      fits(HEADER.id, options.id, max) &&
      fits(HEADER.key, options.key, max) &&
      fits(HEADER.subject, options.subject, max) &&
      (options.headers === undefined || allFit(options.headers, max))
    ) {
      return;
    }
    const issues: string[] = [];
    const check = (what: string, name: string, value: string | undefined) => {
      if (value === undefined || fits(name, value, max)) return;
      const bytes = Buffer.byteLength(name) + Buffer.byteLength(value);
      if (bytes > max)
        issues.push(`${what} is ${bytes} bytes; ${this.adapter} carries at most ${max} per header`);
    };
    check('id', HEADER.id, options.id);
    check('key', HEADER.key, options.key);
    check('subject', HEADER.subject, options.subject);
    for (const [name, value] of Object.entries(options.headers ?? {})) check(`header "${name}"`, name, value);
    if (issues.length > 0) {
      throw new ValidationError(
        `message for "${destination}" breaks a protocol limit (maxHeaderBytes)`,
        issues,
        {
          adapter: this.adapter,
        },
      );
    }
  }

  /** Starts a consumer: validates options, wires the engine to the adapter's subscription. */
  async startConsumer<T>(params: {
    readonly kind: DestinationKind;
    readonly destination: string;
    readonly codec: Codec<T>;
    readonly schema: StandardSchemaV1<unknown, T> | undefined;
    readonly policy: RetryPolicy;
    readonly handler: Handler<T>;
    readonly options: ConsumeOptions;
    readonly onEnd?: () => void;
    /** The durable subscription or log group, for instrumentation. */
    readonly consumer?: string | undefined;
    /** A batch consumer's collector (batch-consumer.ts): see `EngineOptions.gather`. */
    readonly gather?: Gather<T> | undefined;
    readonly subscribe: (prefetch: number, deliver: Deliver) => Promise<Subscription>;
  }): Promise<Consumer> {
    this.assertOpen();
    const { options, policy } = params;
    if (typeof params.handler !== 'function') throw new ValidationError('handler must be a function');
    const unknown = unknownKeys('options', options, CONSUME_OPTIONS[params.kind]);
    if (unknown.length > 0) {
      throw new ValidationError(`invalid consumer options for "${params.destination}"`, unknown);
    }
    const concurrency = positiveInt('concurrency', options.concurrency, 1, 10_000);
    const prefetch = positiveInt('prefetch', options.prefetch, Math.max(concurrency * 2, 10), 100_000);
    const handlerTimeoutMs = positiveInt(
      'handlerTimeoutMs',
      options.handlerTimeoutMs,
      DEFAULT_HANDLER_TIMEOUT_MS,
      2 ** 31 - 1,
    );
    options.signal?.throwIfAborted();
    const retry = retryPolicy(params.destination, policy, params.consumer);
    const engine: ConsumerEngine<T> = new ConsumerEngine<T>({
      adapter: this.adapter,
      clientId: this.options.clientId,
      consumer: params.consumer,
      kind: params.kind,
      destination: params.destination,
      codec: params.codec,
      schema: params.schema,
      handler: params.handler,
      concurrency,
      handlerTimeoutMs,
      closeTimeoutMs: this.options.closeTimeoutMs,
      ...retry,
      sendDeadLetter: (queue, message) => this.sendDeadLetter(queue, message),
      sendCopy: (address, message) =>
        this.connection.run(`retrying a message of "${params.destination}"`, () =>
          this.driver.sendTo(address, message),
        ),
      nativeDelay: this.capabilities.delay !== 'none',
      reportError: (error) => this.connection.reportError(error),
      onSettle: (outcome, event) => this.connection.reportSettlement(outcome, event),
      gather: params.gather,
      onClose: (closed) => {
        this.consumers.delete(closed as ConsumerEngine<unknown>);
        params.onEnd?.();
      },
    });
    this.consumers.add(engine as ConsumerEngine<unknown>);
    try {
      engine.attach(
        await this.connection.run(`subscribing to "${params.destination}"`, () =>
          params.subscribe(prefetch, engine.deliver),
        ),
      );
    } catch (error) {
      await engine.close();
      throw error;
    }
    const signal = options.signal;
    if (signal !== undefined) {
      const onAbort = () => void engine.close();
      signal.addEventListener('abort', onAbort, { once: true });
    }
    return engine;
  }

  private async sendDeadLetter(queue: string, message: OutgoingMessage): Promise<void> {
    if (this.capabilities.queue === 'none') {
      throw new UnsupportedCapabilityError(
        `${this.adapter} has no queues to dead-letter "${message.id}" into; settle failing messages in the handler`,
        [{ feature: 'queue', required: 'emulated', actual: 'none' }],
        { adapter: this.adapter },
      );
    }
    await this.connection.run(`dead-lettering to "${queue}"`, () =>
      this.driver.send({ name: queue }, message),
    );
  }
}

/** A message being built: core fills its fields in before it is sent. */
export type Mutable<T> = { -readonly [K in keyof T]: T[K] };

export type { DestinationOptions };

/** An append inside `omnibus:send`: its position goes on the channel message before `asyncEnd`. */
async function positioned<R>(send: () => Promise<R>, context: SendContext): Promise<R> {
  const result = await send();
  context.position = result as LogPosition;
  return result;
}

/** True when `name` and `value` fit `max` bytes even at 3 bytes a UTF-16 unit (UTF-8's most). */
function fits(name: string, value: string | undefined, max: number): boolean {
  return value === undefined || (name.length + value.length) * 3 <= max;
}

function allFit(headers: Record<string, string>, max: number): boolean {
  for (const name in headers) if (!fits(name, headers[name], max)) return false;
  return true;
}
