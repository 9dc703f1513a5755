/**
 * The destination handles `bus.queue()`, `bus.topic()` and `bus.log()` return: the way in (a
 * consumer wired to the engine) and the way out (a payload checked, encoded, traced and sent
 * through the connection), for each semantic.
 */
import type {
  Adapter,
  BatchOutcome,
  Deliver,
  OutgoingMessage,
  QueueSpec,
  ResetTarget,
  ResolvedReadFrom,
  Subscription,
} from './adapter.js';
import { batchConsumption } from './batch-consumer.js';
import type { BusImpl, Mutable } from './bus.js';
import { type Codec, type CodecName, resolveCodec } from './codec.js';
import { CONFIRMED, OWN } from './connection.js';
import { type DestinationKind, type SendContext, sendChannel } from './diagnostics.js';
import { ConnectionError, describeError, PublishError, ValidationError } from './errors.js';
import { iterate } from './iterate.js';
import { DEFAULT_MAX_PRIORITY, pick, positiveInt, retryPolicy } from './policy.js';
import { validateName, validatePattern, validateSubject } from './routing.js';
import { validatePayload } from './schema.js';
import type {
  AppendBatchEntry,
  AppendBatchResult,
  AppendOptions,
  AppendResult,
  Batched,
  BatchFailure,
  BatchHandler,
  ConsumeOptions,
  Consumer,
  DestinationOptions,
  GroupLag,
  Handler,
  Log,
  LogBatchHandler,
  LogHandler,
  LogMessage,
  LogOptions,
  LogPosition,
  Message,
  PublishBatchEntry,
  PublishOptions,
  Queue,
  QueueOptions,
  ReadFrom,
  ReadOptions,
  ResetFrom,
  RetryPolicy,
  SendBatchEntry,
  SendBatchResult,
  SendOptions,
  SendResult,
  SubscribeOptions,
  Topic,
  TopicOptions,
} from './types.js';

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

  /** The outgoing message for a payload: at once without a schema, after validating it with one. */
  protected outgoing(
    payload: TIn,
    options: SendOptions | PublishOptions | AppendOptions,
  ): Mutable<OutgoingMessage> | Promise<Mutable<OutgoingMessage>> {
    if (this.options.schema === undefined)
      return this.bus.outgoing<unknown>(this.name, this.codec, payload, options);
    return this.validated(payload, options);
  }

  private async validated(
    payload: TIn,
    options: SendOptions | PublishOptions | AppendOptions,
  ): Promise<Mutable<OutgoingMessage>> {
    await validatePayload(this.options.schema!, payload, `payload for "${this.name}"`);
    return this.bus.outgoing<unknown>(this.name, this.codec, payload, options);
  }

  /**
   * The batch form of a send: each entry is checked (schema, then `build`: options, encoding,
   * capabilities) before anything of it is sent; then every valid one is issued through `send`,
   * the single send's path, before any is awaited, so an adapter that batches (Kafka) gets them
   * together. One result per entry, in order; a failure is its entry's alone.
   *
   * With `many` (the adapter's `sendBatch`/`publishBatch`) and nobody tracing sends, the valid
   * messages go to the adapter in one call through the connection instead: one operation, one
   * deadline, no promise per message. A message the adapter failed with a retriable connection
   * error goes again through `send`, which waits for the reconnect.
   */
  protected async sendAll<E extends { readonly payload: TIn }, R>(
    operation: SendContext['operation'],
    entries: readonly E[],
    /** `stamp`: the batch's timestamp, one reading of the clock for all its messages. */
    build: (entry: E, stamp: number) => Mutable<OutgoingMessage>,
    send: (message: Mutable<OutgoingMessage>) => Promise<unknown>,
    succeeded: (id: string, value: unknown) => R,
    many?: (messages: readonly OutgoingMessage[]) => Promise<BatchOutcome>,
  ): Promise<(R | BatchFailure)[]> {
    this.bus.assertOpen();
    if (!Array.isArray(entries)) {
      throw new ValidationError(
        `${operation}Batch to "${this.name}" takes an array of { payload, ...options }, got ${describeValue(entries)}`,
      );
    }
    const count = entries.length;
    if (count === 0) return [];
    const schema = this.options.schema;
    const checked =
      schema === undefined
        ? undefined
        : await Promise.allSettled(
            entries.map((entry) =>
              validatePayload(
                schema,
                isEntry(entry) ? entry.payload : undefined,
                `payload for "${this.name}"`,
              ),
            ),
          );
    const failures: (BatchFailure | undefined)[] = new Array(count);
    const messages: (Mutable<OutgoingMessage> | undefined)[] = new Array(count);
    const stamp = Date.now();
    // While the connection is away, each message waits on its own (and counts against sendBuffer).
    const together =
      many !== undefined && !sendChannel.hasSubscribers && this.bus.connection.state === 'connected';
    const sent: (Promise<unknown> | undefined)[] | undefined = together ? undefined : new Array(count);
    for (let i = 0; i < count; i++) {
      const entry = entries[i];
      try {
        if (!isEntry(entry)) {
          throw new ValidationError('a batch entry is an object { payload, ...options }', [], {
            adapter: this.bus.adapter,
          });
        }
        const check = checked?.[i];
        if (check !== undefined && check.status === 'rejected') throw check.reason;
        const message = build(entry as E, stamp);
        messages[i] = message;
        if (sent !== undefined) sent[i] = send(message);
      } catch (error) {
        failures[i] = this.failure(operation, i, error);
      }
    }
    if (sent === undefined) {
      return this.sentTogether(operation, messages, failures, send, succeeded, many!);
    }
    const outcomes = await Promise.allSettled(sent);
    const results = new Array<R | BatchFailure>(count);
    for (let i = 0; i < count; i++) {
      const failed = failures[i];
      const outcome = outcomes[i]!;
      if (failed !== undefined) results[i] = failed;
      else if (outcome.status === 'rejected') results[i] = this.failure(operation, i, outcome.reason);
      else results[i] = succeeded(messages[i]!.id, outcome.value);
    }
    return results;
  }

  /** `sendAll`'s valid messages sent in one call of the adapter's `many`. */
  private async sentTogether<R>(
    operation: SendContext['operation'],
    messages: readonly (Mutable<OutgoingMessage> | undefined)[],
    failures: (BatchFailure | undefined)[],
    send: (message: Mutable<OutgoingMessage>) => Promise<unknown>,
    succeeded: (id: string, value: unknown) => R,
    many: (messages: readonly OutgoingMessage[]) => Promise<BatchOutcome>,
  ): Promise<(R | BatchFailure)[]> {
    const count = messages.length;
    // The messages that were built, and where each came from (all of them, in the common case).
    let batch = messages as readonly OutgoingMessage[];
    let at: number[] | undefined;
    if (failures.some(isDefined)) {
      at = [];
      for (let i = 0; i < count; i++) if (messages[i] !== undefined) at.push(i);
      batch = at.map((i) => messages[i]!);
    }
    let outcome: BatchOutcome;
    let whole: unknown;
    let failedWhole = false;
    if (batch.length > 0) {
      this.what ??= `${SENDING[operation]} "${this.name}"`;
      try {
        outcome = await this.bus.connection.run(this.what, orEach(many), batch);
      } catch (error) {
        failedWhole = true;
        whole = error;
      }
    }
    const results = new Array<R | BatchFailure>(count);
    let again: Promise<void>[] | undefined;
    for (let j = 0; j < batch.length; j++) {
      const i = at === undefined ? j : at[j]!;
      const error = failedWhole ? whole : outcome?.[j];
      if (error === undefined) {
        results[i] = succeeded(batch[j]!.id, undefined);
      } else if (!failedWhole && error instanceof ConnectionError && error.retriable) {
        // Not taken because the connection went: sent again alone, once it is back.
        const message = messages[i]!;
        again ??= [];
        again.push(
          send(message).then(
            (value) => {
              results[i] = succeeded(message.id, value);
            },
            (reason: unknown) => {
              results[i] = this.failure(operation, i, reason);
            },
          ),
        );
      } else {
        results[i] = this.failure(operation, i, error);
      }
    }
    for (let i = 0; i < count; i++) if (failures[i] !== undefined) results[i] = failures[i]!;
    if (again !== undefined) await Promise.all(again);
    return results;
  }

  /** An entry's failure: a validation error is restated with the entry's index; others are kept as they are. */
  private failure(operation: SendContext['operation'], index: number, error: unknown): BatchFailure {
    if (error instanceof ValidationError) {
      const what = error.message.replace(/^\[omnibus\] (\[[^\]]*\] )?/, '');
      return {
        ok: false,
        index,
        error: new ValidationError(
          `${operation}Batch to "${this.name}": entry ${index} is invalid`,
          error.issues.length > 0 ? error.issues : [what],
          { adapter: error.adapter, cause: error },
        ),
      };
    }
    return { ok: false, index, error: error instanceof Error ? error : new Error(describeError(error)) };
  }

  /**
   * Hands a message to the adapter through the connection (traced when someone listens). `send` is
   * made once per handle, not per message; without a listener no closure is made per message.
   */
  protected transmit<R>(
    kind: DestinationKind,
    operation: SendContext['operation'],
    message: Mutable<OutgoingMessage>,
    send: (message: Mutable<OutgoingMessage>) => Promise<R>,
  ): Promise<R> {
    return this.transmitFor(kind, operation, message, send, OWN) as Promise<R>;
  }

  /**
   * `transmit`, resolving with `result` once the broker confirmed (`OWN`: with what the adapter
   * resolved): a send's `{ id }` comes from the connection's own promise, with no async frame or
   * promise of the handle's per message.
   */
  protected transmitFor<V>(
    kind: DestinationKind,
    operation: SendContext['operation'],
    message: Mutable<OutgoingMessage>,
    send: (message: Mutable<OutgoingMessage>) => Promise<unknown>,
    result: V,
  ): Promise<V> {
    this.what ??= `${SENDING[operation]} "${this.name}"`;
    const what = this.what;
    if (!sendChannel.hasSubscribers) return this.bus.connection.runFor(what, send, message, result);
    return this.bus.traceSend(kind, operation, this.name, message, () =>
      this.bus.connection.runFor(what, send, message, result),
    );
  }

  /** What a send is called in its errors (a handle sends one way: send, publish or append). */
  private what: string | undefined;

  /** The way in: a consumer of this destination, started by the engine the same way for every semantic. */
  protected startConsumer(
    kind: DestinationKind,
    handler: Handler<T> | BatchHandler<T>,
    options: ConsumeOptions & Partial<Batched>,
    onEnd: (() => void) | undefined,
    open: (driver: Adapter, prefetch: number, deliver: Deliver) => Promise<Subscription>,
    more: { readonly consumer?: string | undefined; readonly policy?: RetryPolicy } = {},
  ): Promise<Consumer> {
    const driver = this.bus.driverFor;
    // A batch consumer is the same engine with a handler that gathers (batch-consumer.ts).
    const batched =
      options.batch === undefined || onEnd !== undefined
        ? undefined
        : batchConsumption(this.name, handler as BatchHandler<T>, options as ConsumeOptions & Batched);
    return this.bus.startConsumer<T>({
      kind,
      destination: this.name,
      codec: this.codec,
      schema: this.options.schema,
      policy: more.policy ?? this.options,
      // With `gather`, the engine hands messages to the collector and never calls `handler`.
      handler: handler as Handler<T>,
      gather: batched?.gather,
      options: batched?.options ?? options,
      consumer: more.consumer,
      ...(onEnd === undefined ? {} : { onEnd }),
      subscribe: (prefetch, deliver) => open(driver, prefetch, deliver),
    });
  }
}

const SENDING: Readonly<Record<SendContext['operation'], string>> = {
  send: 'sending to',
  publish: 'publishing to',
  append: 'appending to',
};

export class QueueHandle<T, TIn>
  extends DestinationHandle<T, TIn, QueueOptions<T, TIn>>
  implements Queue<T, TIn>
{
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

  send(payload: TIn, options: SendOptions = NO_OPTIONS): Promise<SendResult> {
    try {
      const built = this.outgoing(payload, options);
      if (built instanceof Promise) return built.then((message) => this.sendBuilt(message, options));
      return this.sendBuilt(built, options);
    } catch (error) {
      return Promise.reject(error);
    }
  }

  private sendBuilt(built: Mutable<OutgoingMessage>, options: SendOptions): Promise<SendResult> {
    const message = this.sendable(built, options);
    return this.transmitFor('queue', 'send', message, this.sendOne, { id: message.id });
  }

  private readonly sendOne = (message: OutgoingMessage): Promise<void> =>
    this.bus.driverFor.send(this.queueSpec, message);

  async sendBatch(messages: readonly SendBatchEntry<TIn>[]): Promise<SendBatchResult[]> {
    return this.sendAll(
      'send',
      messages,
      (entry, stamp) =>
        this.sendable(this.bus.outgoing<unknown>(this.name, this.codec, entry.payload, entry, stamp), entry),
      (message) => this.transmit('queue', 'send', message, this.sendOne),
      sent,
      this.bus.driverFor.sendBatch === undefined ? undefined : this.sendMany,
    );
  }

  private readonly sendMany = (messages: readonly OutgoingMessage[]): Promise<BatchOutcome> =>
    this.bus.driverFor.sendBatch!(this.queueSpec, messages);

  /** Checks and sets what only a queue's message has: priority and delay. */
  private sendable(message: Mutable<OutgoingMessage>, options: SendOptions): Mutable<OutgoingMessage> {
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
    return message;
  }

  consume(handler: BatchHandler<T>, options: ConsumeOptions & Batched): Promise<Consumer>;
  consume(handler: Handler<T>, options?: ConsumeOptions): Promise<Consumer>;
  async consume(
    handler: Handler<T> | BatchHandler<T>,
    options: ConsumeOptions & Partial<Batched> = {},
  ): Promise<Consumer> {
    return this.start(handler, options);
  }

  messages(options: ConsumeOptions = {}): AsyncIterableIterator<Message<T>> {
    const { signal, ...rest } = options;
    return iterate<T>((handler, onEnd) => this.start(handler, rest, onEnd), signal);
  }

  async depth(): Promise<number> {
    this.bus.assertOpen();
    this.bus.feature('depth', 'count what your consumers handle instead');
    return this.bus.connection.run(`counting "${this.name}"`, () => this.bus.driverFor.depth(this.queueSpec));
  }

  async purge(): Promise<number | undefined> {
    this.bus.assertOpen();
    this.bus.feature('purge', 'consume and ack what the queue holds');
    return this.bus.connection.run(`purging "${this.name}"`, () => this.bus.driverFor.purge(this.queueSpec));
  }

  private async start(
    handler: Handler<T> | BatchHandler<T>,
    options: ConsumeOptions & Partial<Batched>,
    onEnd?: () => void,
  ): Promise<Consumer> {
    const spec = this.queueSpec;
    return this.startConsumer('queue', handler, options, onEnd, (driver, prefetch, deliver) =>
      driver.consume(spec, { prefetch }, deliver),
    );
  }
}

export class TopicHandle<T, TIn>
  extends DestinationHandle<T, TIn, TopicOptions<T, TIn>>
  implements Topic<T, TIn>
{
  private readonly spec = { name: this.name };

  publish(payload: TIn, options: PublishOptions = NO_OPTIONS): Promise<SendResult> {
    try {
      if (options.subject !== undefined) validateSubject(options.subject);
      const built = this.outgoing(payload, options);
      if (built instanceof Promise) return built.then(this.publishBuilt);
      return this.publishBuilt(built);
    } catch (error) {
      return Promise.reject(error);
    }
  }

  private readonly publishBuilt = (message: Mutable<OutgoingMessage>): Promise<SendResult> =>
    this.transmitFor('topic', 'publish', message, this.publishOne, { id: message.id });

  private readonly publishOne = (message: OutgoingMessage): Promise<void> =>
    this.bus.driverFor.publish(this.spec, message);

  async publishBatch(messages: readonly PublishBatchEntry<TIn>[]): Promise<SendBatchResult[]> {
    return this.sendAll(
      'publish',
      messages,
      (entry, stamp) => {
        if (entry.subject !== undefined) validateSubject(entry.subject);
        return this.bus.outgoing<unknown>(this.name, this.codec, entry.payload, entry, stamp);
      },
      (message) => this.transmit('topic', 'publish', message, this.publishOne),
      sent,
      this.bus.driverFor.publishBatch === undefined ? undefined : this.publishMany,
    );
  }

  private readonly publishMany = (messages: readonly OutgoingMessage[]): Promise<BatchOutcome> =>
    this.bus.driverFor.publishBatch!(this.spec, messages);

  subscribe(
    pattern: string,
    handler: BatchHandler<T>,
    options: SubscribeOptions & Batched,
  ): Promise<Consumer>;
  subscribe(pattern: string, handler: Handler<T>, options?: SubscribeOptions): Promise<Consumer>;
  async subscribe(
    pattern: string,
    handler: Handler<T> | BatchHandler<T>,
    options: SubscribeOptions & Partial<Batched> = {},
  ): Promise<Consumer> {
    return this.start(pattern, handler, options);
  }

  messages(pattern: string, options: SubscribeOptions = {}): AsyncIterableIterator<Message<T>> {
    const { signal, ...rest } = options;
    return iterate<T>((handler, onEnd) => this.start(pattern, handler, rest, onEnd), signal);
  }

  async deleteSubscription(name: string): Promise<boolean> {
    this.bus.assertOpen();
    const durable = validateName('durable subscription', name);
    this.bus.feature('deleteSubscription', "delete it with the broker's own tools");
    return this.bus.connection.run(`deleting subscription "${durable}" of "${this.name}"`, () =>
      this.bus.driverFor.deleteSubscription(this.spec, durable),
    );
  }

  private start(
    pattern: string,
    handler: Handler<T> | BatchHandler<T>,
    options: SubscribeOptions & Partial<Batched>,
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
    return this.startConsumer(
      'topic',
      handler,
      options,
      onEnd,
      (driver, prefetch, deliver) =>
        driver.subscribe(
          { name: this.name },
          { pattern: valid, prefetch, ...(durable === undefined ? {} : { durable }) },
          deliver,
        ),
      { consumer: durable, policy: { ...this.options, ...pick(options) } },
    );
  }
}

export class LogHandle<T, TIn> extends DestinationHandle<T, TIn, LogOptions<T, TIn>> implements Log<T, TIn> {
  private readonly partitions = positiveInt('partitions', this.options.partitions, 1, 10_000);
  private readonly spec = { name: this.name, partitions: this.partitions };

  append(payload: TIn, options: AppendOptions & { readonly position: false }): Promise<SendResult>;
  append(payload: TIn, options?: AppendOptions): Promise<AppendResult>;
  async append(payload: TIn, options: AppendOptions = {}): Promise<AppendResult | SendResult> {
    const message = await this.outgoing(payload, options);
    // One shape on every broker: without `position`, even one that knows it says nothing.
    if (options.position === false) {
      return this.transmitFor('log', 'append', message, this.appendUnpositioned, { id: message.id });
    }
    return { id: message.id, position: await this.appendPositioned(message) };
  }

  async appendBatch(messages: readonly AppendBatchEntry<TIn>[]): Promise<AppendBatchResult[]> {
    return this.sendAll(
      'append',
      messages,
      (entry, stamp) => this.bus.outgoing<unknown>(this.name, this.codec, entry.payload, entry, stamp),
      (message) => this.appendPositioned(message),
      appended,
    );
  }

  private readonly appendOne = (message: OutgoingMessage) =>
    this.bus.driverFor.append(this.spec, message, true);
  private readonly appendUnpositioned = (message: OutgoingMessage) =>
    this.bus.driverFor.append(this.spec, message, false);

  /** Appends one entry and resolves with its position, which every adapter must give when asked. */
  private async appendPositioned(message: Mutable<OutgoingMessage>): Promise<LogPosition> {
    const position = await this.transmit('log', 'append', message, this.appendOne);
    if (position === undefined) {
      throw new PublishError(
        `appending to "${this.name}": the adapter confirmed the entry without its position`,
      );
    }
    return position;
  }

  // Every adapter's log read sets `position` (the contract suite's log tests check it), so a
  // log's messages are `LogMessage`s.
  read(handler: LogBatchHandler<T>, options: ReadOptions & Batched): Promise<Consumer>;
  read(handler: LogHandler<T>, options?: ReadOptions): Promise<Consumer>;
  async read(
    handler: LogHandler<T> | LogBatchHandler<T>,
    options: ReadOptions & Partial<Batched> = {},
  ): Promise<Consumer> {
    return this.start(handler as Handler<T>, options);
  }

  messages(options: ReadOptions = {}): AsyncIterableIterator<LogMessage<T>> {
    const { signal, ...rest } = options;
    return iterate<T>((handler, onEnd) => this.start(handler, rest, onEnd), signal) as AsyncIterableIterator<
      LogMessage<T>
    >;
  }

  async resetGroup(group: string, to: ResetFrom): Promise<void> {
    this.bus.assertOpen();
    const name = validateName('consumer group', group);
    const target = resetTarget(to);
    this.bus.feature('resetGroup', 'read with a new group, from where it should start');
    const { spec } = this;
    await this.bus.connection.run(`resetting group "${name}" of "${this.name}"`, () =>
      this.bus.driverFor.resetGroup(spec, name, target),
    );
  }

  async lag(group: string): Promise<GroupLag> {
    this.bus.assertOpen();
    const name = validateName('consumer group', group);
    this.bus.feature('lag', "watch the group with the broker's own tools");
    const { spec } = this;
    const partitions = await this.bus.connection.run(`measuring the lag of "${name}" on "${this.name}"`, () =>
      this.bus.driverFor.groupLag(spec, name),
    );
    return { total: partitions.reduce((sum, p) => sum + p.lag, 0), partitions };
  }

  private async start(
    handler: Handler<T> | BatchHandler<T>,
    options: ReadOptions & Partial<Batched>,
    onEnd?: () => void,
  ): Promise<Consumer> {
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
    const { spec } = this;
    const read = { from, ...(group === undefined ? {} : { group }) };
    return this.startConsumer(
      'log',
      handler,
      options,
      onEnd,
      (driver, prefetch, deliver) => driver.read(spec, { prefetch, ...read }, deliver),
      { consumer: group },
    );
  }
}

/** The options of a send without any: one object, not one per call. */
const NO_OPTIONS = Object.freeze({});

/** A batch result of `send`/`publish`: the id alone. */
/**
 * The adapter's batch call, where a retriable connection error for the whole batch (nothing was
 * taken) becomes that error for each message: `sendAll` then sends each again alone, waiting for
 * the reconnect the way a `send` does, instead of the connection retrying the batch as one send.
 */
function orEach(
  many: (messages: readonly OutgoingMessage[]) => Promise<BatchOutcome>,
): (messages: readonly OutgoingMessage[]) => Promise<BatchOutcome> {
  return (messages) => {
    let pending: Promise<BatchOutcome>;
    try {
      pending = many(messages);
    } catch (error) {
      pending = Promise.reject(error);
    }
    if (pending === (CONFIRMED as Promise<unknown>)) return pending;
    return pending.catch((error: unknown) => {
      if (error instanceof ConnectionError && error.retriable) return messages.map(() => error);
      throw error;
    });
  };
}

function isDefined(value: unknown): boolean {
  return value !== undefined;
}

function sent(id: string): SendBatchResult {
  return { ok: true, id };
}

/** A batch result of `append`: the id and the position the adapter resolved with. */
function appended(id: string, position: unknown): AppendBatchResult {
  return { ok: true, id, position: position as LogPosition };
}

function isEntry(value: unknown): value is { readonly payload: unknown } {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && 'payload' in value;
}

function describeValue(value: unknown): string {
  return value === null ? 'null' : typeof value;
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

function resetTarget(to: ResetFrom): ResetTarget {
  if (to === 'earliest' || to === 'latest') return { kind: to };
  if (typeof to === 'object' && to !== null && 'timestamp' in to) {
    const ms = to.timestamp instanceof Date ? to.timestamp.getTime() : to.timestamp;
    if (typeof ms === 'number' && Number.isFinite(ms) && ms >= 0) return { kind: 'timestamp', timestamp: ms };
  }
  throw new ValidationError(
    "a group resets to 'earliest', 'latest' or { timestamp } (a valid Date or non-negative milliseconds)",
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

/**
 * The codec encodes what `send` takes (`TIn`) and decodes what the schema then turns into `T`;
 * without a schema the two are one type, so the consumer can treat its output as `T`.
 */
function destinationCodec<T, TIn>(options: DestinationOptions<T, TIn>): Codec<T> {
  return resolveCodec(options.codec as CodecName | Codec<T> | undefined);
}
