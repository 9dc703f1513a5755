/**
 * The bus and its destination handles: validation, capability checks, encoding and the retry
 * policy are done here, once, before an adapter sees anything.
 */
import { randomUUID } from 'node:crypto';
import type {
  Adapter,
  Deliver,
  OutgoingMessage,
  QueueSpec,
  ResolvedReadFrom,
  Subscription,
} from './adapter.js';
import { assertCapability, type Capabilities } from './capabilities.js';
import { type Codec, type CodecName, encodePayload, resolveCodec } from './codec.js';
import { type ResolvedConnectOptions, unknownKeys } from './config.js';
import type { Connection } from './connection.js';
import { ConsumerEngine } from './consumer.js';
import { type DestinationKind, type SendContext, sendChannel } from './diagnostics.js';
import { HEADER } from './envelope.js';
import { ClosedError, UnsupportedCapabilityError, ValidationError } from './errors.js';
import { validateHeaders } from './headers.js';
import { iterate } from './iterate.js';
import { DEAD_LETTER_SUFFIX, validateName, validatePattern, validateSubject } from './routing.js';
import { type StandardSchemaV1, validatePayload } from './schema.js';
import type {
  AppendOptions,
  AppendResult,
  Bus,
  BusEvents,
  ConsumeOptions,
  Consumer,
  DestinationOptions,
  Handler,
  Health,
  Log,
  LogHandler,
  LogMessage,
  LogOptions,
  LogPosition,
  Message,
  PublishOptions,
  Queue,
  QueueOptions,
  ReadFrom,
  ReadOptions,
  RetryPolicy,
  SendOptions,
  SendResult,
  SubscribeOptions,
  Topic,
  TopicOptions,
} from './types.js';

const DEFAULT_MAX_ATTEMPTS = 5;
const DEFAULT_HANDLER_TIMEOUT_MS = 30_000;
const DEFAULT_MAX_PRIORITY = 9;

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
    if (maxHeader !== undefined) this.checkHeaderSizes(destination, maxHeader, options);
    const message: Mutable<OutgoingMessage> = {
      id: options.id ?? randomUUID(),
      body,
      headers: options.headers ?? {},
      contentType: codec.contentType,
      timestamp: Date.now(),
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
    const headers = { ...message.headers };
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
    return sendChannel.tracePromise(async () => {
      const result = await send();
      if (operation === 'append') context.position = result as LogPosition;
      return result;
    }, context);
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
    const issues: string[] = [];
    const check = (what: string, name: string, value: string | undefined) => {
      if (value === undefined) return;
      // A UTF-8 byte is at most 3 per UTF-16 unit: skip the exact count for short values.
      if ((name.length + value.length) * 3 <= max) return;
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
    const retry = retryPolicy(params.destination, policy);
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

/**
 * What queues, topics and logs share: the codec, the retry policy (checked when the handle is made),
 * and the way out, where a payload is checked against its schema, encoded, and handed to the adapter
 * traced and through the connection.
 */
abstract class DestinationHandle<T, TIn, O extends DestinationOptions<T, TIn> & RetryPolicy> {
  protected readonly codec: Codec<T>;

  constructor(
    protected readonly bus: BusImpl,
    readonly name: string,
    protected readonly options: O,
  ) {
    this.codec = destinationCodec(options);
    retryPolicy(name, options);
  }

  protected async outgoing(
    payload: TIn,
    options: SendOptions | PublishOptions | AppendOptions,
  ): Promise<Mutable<OutgoingMessage>> {
    if (this.options.schema !== undefined)
      await validatePayload(this.options.schema, payload, `payload for "${this.name}"`);
    return this.bus.outgoing<unknown>(this.name, this.codec, payload, options);
  }

  protected transmit<R>(
    kind: DestinationKind,
    operation: SendContext['operation'],
    message: Mutable<OutgoingMessage>,
    send: (driver: Adapter) => Promise<R>,
  ): Promise<R> {
    const driver = this.bus.driverFor;
    return this.bus.traceSend(kind, operation, this.name, message, () =>
      this.bus.connection.run(`${SENDING[operation]} "${this.name}"`, () => send(driver)),
    );
  }
}

const SENDING: Readonly<Record<SendContext['operation'], string>> = {
  send: 'sending to',
  publish: 'publishing to',
  append: 'appending to',
};

class QueueHandle<T, TIn> extends DestinationHandle<T, TIn, QueueOptions<T, TIn>> implements Queue<T, TIn> {
  private readonly maxPriority: number | undefined;
  private readonly queueSpec: QueueSpec;

  constructor(bus: BusImpl, name: string, options: QueueOptions<T, TIn>) {
    super(bus, name, options);
    if (options.maxPriority !== undefined) {
      bus.feature('priority', 'drop maxPriority, or use a broker with priority queues');
      const limit = bus.capabilities.limits.maxPriority ?? DEFAULT_MAX_PRIORITY;
      this.maxPriority = positiveInt('maxPriority', options.maxPriority, 0, limit, 1);
    }
    this.queueSpec = this.maxPriority === undefined ? { name } : { name, maxPriority: this.maxPriority };
  }

  async send(payload: TIn, options: SendOptions = {}): Promise<SendResult> {
    const message = await this.outgoing(payload, options);
    if (options.priority !== undefined) {
      this.bus.feature('priority', 'send without a priority, or use a broker with priority queues');
      // One rule on every broker: some order undeclared queues by priority, others drop it silently.
      if (this.maxPriority === undefined) {
        throw new ValidationError(
          `queue "${this.name}" was declared without maxPriority, so it cannot order by priority; declare it with bus.queue(name, { maxPriority })`,
        );
      }
      message.priority = positiveInt('priority', options.priority, 0, this.maxPriority, 0);
    }
    if (options.delayMs !== undefined) {
      const delayMs = positiveInt('delayMs', options.delayMs, 0, 2 ** 31 - 1, 0);
      if (delayMs > 0) {
        this.bus.feature(
          'delay',
          'schedule the send in your application, or use a broker with delayed delivery',
        );
        message.delayMs = delayMs;
      }
    }
    const spec = this.queueSpec;
    await this.transmit('queue', 'send', message, (driver) => driver.send(spec, message));
    return { id: message.id };
  }

  async consume(handler: Handler<T>, options: ConsumeOptions = {}): Promise<Consumer> {
    return this.start(handler, options);
  }

  messages(options: ConsumeOptions = {}): AsyncIterableIterator<Message<T>> {
    const { signal, ...rest } = options;
    return iterate<T>((handler, onEnd) => this.start(handler, rest, onEnd), signal);
  }

  private async start(handler: Handler<T>, options: ConsumeOptions, onEnd?: () => void): Promise<Consumer> {
    const driver = this.bus.driverFor;
    const spec = this.queueSpec;
    return this.bus.startConsumer<T>({
      kind: 'queue',
      destination: this.name,
      codec: this.codec,
      schema: this.options.schema,
      policy: this.options,
      handler,
      options,
      ...(onEnd === undefined ? {} : { onEnd }),
      subscribe: (prefetch, deliver) => driver.consume(spec, { prefetch }, deliver),
    });
  }
}

class TopicHandle<T, TIn> extends DestinationHandle<T, TIn, TopicOptions<T, TIn>> implements Topic<T, TIn> {
  private readonly spec = { name: this.name };

  async publish(payload: TIn, options: PublishOptions = {}): Promise<SendResult> {
    if (options.subject !== undefined) validateSubject(options.subject);
    const message = await this.outgoing(payload, options);
    await this.transmit('topic', 'publish', message, (driver) => driver.publish(this.spec, message));
    return { id: message.id };
  }

  async subscribe(pattern: string, handler: Handler<T>, options: SubscribeOptions = {}): Promise<Consumer> {
    return this.start(pattern, handler, options);
  }

  messages(pattern: string, options: SubscribeOptions = {}): AsyncIterableIterator<Message<T>> {
    const { signal, ...rest } = options;
    return iterate<T>((handler, onEnd) => this.start(pattern, handler, rest, onEnd), signal);
  }

  private start(
    pattern: string,
    handler: Handler<T>,
    options: SubscribeOptions,
    onEnd?: () => void,
  ): Promise<Consumer> {
    this.bus.assertOpen();
    const valid = validatePattern(pattern);
    if (valid.split('.').some((w) => w === '*' || w === '#')) {
      this.bus.feature('routing', 'subscribe to an exact subject, or filter in the handler');
    }
    const durable =
      options.durable === undefined ? undefined : validateName('durable subscription', options.durable);
    if (durable !== undefined) {
      this.bus.feature('durableSubscriptions', 'use a queue for messages that must wait for their consumer');
    }
    const driver = this.bus.driverFor;
    return this.bus.startConsumer<T>({
      consumer: durable,
      kind: 'topic',
      destination: this.name,
      codec: this.codec,
      schema: this.options.schema,
      policy: { ...this.options, ...pick(options) },
      handler,
      options,
      ...(onEnd === undefined ? {} : { onEnd }),
      subscribe: (prefetch, deliver) =>
        driver.subscribe(
          { name: this.name },
          { pattern: valid, prefetch, ...(durable === undefined ? {} : { durable }) },
          deliver,
        ),
    });
  }
}

class LogHandle<T, TIn> extends DestinationHandle<T, TIn, LogOptions<T, TIn>> implements Log<T, TIn> {
  private readonly partitions = positiveInt('partitions', this.options.partitions, 1, 10_000);

  async append(payload: TIn, options: AppendOptions = {}): Promise<AppendResult> {
    const message = await this.outgoing(payload, options);
    const spec = { name: this.name, partitions: this.partitions };
    const position = await this.transmit('log', 'append', message, (driver) => driver.append(spec, message));
    return { id: message.id, position };
  }

  // Every adapter's log read sets `position` (the contract suite's log tests check it), so a
  // log's messages are `LogMessage`s.
  async read(handler: LogHandler<T>, options: ReadOptions = {}): Promise<Consumer> {
    return this.start(handler as Handler<T>, options);
  }

  messages(options: ReadOptions = {}): AsyncIterableIterator<LogMessage<T>> {
    const { signal, ...rest } = options;
    return iterate<T>((handler, onEnd) => this.start(handler, rest, onEnd), signal) as AsyncIterableIterator<
      LogMessage<T>
    >;
  }

  private async start(handler: Handler<T>, options: ReadOptions, onEnd?: () => void): Promise<Consumer> {
    this.bus.assertOpen();
    const replay = this.bus.capabilities.replay !== 'none';
    const from = resolveFrom(options.from ?? (replay ? 'earliest' : 'latest'));
    if (from.kind !== 'latest') {
      this.bus.feature('replay', "read from 'latest', or use a broker that retains logs");
    }
    const group = options.group === undefined ? undefined : validateName('consumer group', options.group);
    if (group !== undefined) {
      this.bus.feature('consumerGroups', 'read without a group and keep your own position');
    }
    const driver = this.bus.driverFor;
    const spec = { name: this.name, partitions: this.partitions };
    return this.bus.startConsumer<T>({
      consumer: group,
      kind: 'log',
      destination: this.name,
      codec: this.codec,
      schema: this.options.schema,
      policy: this.options,
      handler,
      options,
      ...(onEnd === undefined ? {} : { onEnd }),
      subscribe: (prefetch, deliver) =>
        driver.read(spec, { prefetch, from, ...(group === undefined ? {} : { group }) }, deliver),
    });
  }
}

function resolveFrom(from: ReadFrom): ResolvedReadFrom {
  if (from === 'earliest' || from === 'latest') return { kind: from };
  if (typeof from === 'object' && from !== null) {
    if ('position' in from) return { kind: 'positions', positions: [checkPosition(from.position)] };
    if ('positions' in from && Array.isArray(from.positions)) {
      return { kind: 'positions', positions: from.positions.map(checkPosition) };
    }
    if ('timestamp' in from) {
      const ms = from.timestamp instanceof Date ? from.timestamp.getTime() : from.timestamp;
      if (typeof ms !== 'number' || !Number.isFinite(ms) || ms < 0) {
        throw new ValidationError(
          'from.timestamp must be a valid Date or a non-negative number of milliseconds',
        );
      }
      return { kind: 'timestamp', timestamp: ms };
    }
  }
  throw new ValidationError(
    "from must be 'earliest', 'latest', { position }, { positions } or { timestamp }",
  );
}

function checkPosition(position: unknown): { partition: number; offset: number } {
  const p = position as { partition?: unknown; offset?: unknown } | null;
  if (
    typeof p !== 'object' ||
    p === null ||
    !Number.isInteger(p.partition) ||
    (p.partition as number) < 0 ||
    !Number.isInteger(p.offset) ||
    (p.offset as number) < 0
  ) {
    throw new ValidationError('a position is { partition, offset } with non-negative integers');
  }
  return { partition: p.partition as number, offset: p.offset as number };
}

function retryPolicy(destination: string, policy: RetryPolicy) {
  const maxAttempts = positiveInt('maxAttempts', policy.maxAttempts, DEFAULT_MAX_ATTEMPTS, 1_000_000);
  // A derived name is not checked against the name limit: `<name>.dlq` of a valid name is valid
  // (at most 208 characters, for the dead letters of a dead-letter queue: every broker takes it).
  const deadLetter =
    policy.deadLetter === undefined
      ? `${destination}${DEAD_LETTER_SUFFIX}`
      : validateName('dead-letter queue', policy.deadLetter);
  const delaySetting = policy.retryDelayMs ?? 0;
  if (typeof delaySetting === 'number') positiveInt('retryDelayMs', delaySetting, 0, 2 ** 31 - 1, 0);
  else if (typeof delaySetting !== 'function')
    throw new ValidationError('retryDelayMs must be a number or a function');
  const retryDelay =
    typeof delaySetting === 'number'
      ? () => delaySetting
      : (attempt: number) => {
          const ms = delaySetting(attempt);
          return Number.isFinite(ms) && ms > 0 ? ms : 0;
        };
  return { maxAttempts, deadLetter, retryDelay };
}

function pick(options: SubscribeOptions): RetryPolicy {
  return {
    ...(options.maxAttempts === undefined ? {} : { maxAttempts: options.maxAttempts }),
    ...(options.retryDelayMs === undefined ? {} : { retryDelayMs: options.retryDelayMs }),
    ...(options.deadLetter === undefined ? {} : { deadLetter: options.deadLetter }),
  };
}

/** The options `consume()`, `subscribe()` and `read()` take: typed, so a new option cannot be forgotten here. */
const QUEUE_CONSUME: Record<keyof ConsumeOptions, true> = {
  concurrency: true,
  prefetch: true,
  signal: true,
  handlerTimeoutMs: true,
};
const TOPIC_SUBSCRIBE: Record<keyof SubscribeOptions, true> = {
  ...QUEUE_CONSUME,
  durable: true,
  maxAttempts: true,
  retryDelayMs: true,
  deadLetter: true,
};
const LOG_READ: Record<keyof ReadOptions, true> = { ...QUEUE_CONSUME, group: true, from: true };
const CONSUME_OPTIONS: Readonly<Record<DestinationKind, readonly string[]>> = {
  queue: Object.keys(QUEUE_CONSUME),
  topic: Object.keys(TOPIC_SUBSCRIBE),
  log: Object.keys(LOG_READ),
};

/** An integer option in [min, max]; `fallback` when undefined. NaN, fractions and out-of-range values throw. */
function positiveInt(name: string, value: unknown, fallback: number, max: number, min = 1): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw new ValidationError(`${name} must be an integer from ${min} to ${max}, got ${String(value)}`);
  }
  return value;
}

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

/**
 * The codec encodes what `send` takes (`TIn`) and decodes what the schema then turns into `T`;
 * without a schema the two are one type, so the consumer can treat its output as `T`.
 */
function destinationCodec<T, TIn>(options: DestinationOptions<T, TIn>): Codec<T> {
  return resolveCodec(options.codec as CodecName | Codec<T> | undefined);
}

export type { DestinationOptions };
