/**
 * The public API of Omnibus: one shape for every broker. See docs/semantics.md for the rules.
 */
import type { Capabilities, Requirements } from './capabilities.js';
import type { Codec, CodecName } from './codec.js';
import type { StandardSchemaV1 } from './schema.js';

export type Headers = Record<string, string>;

/** Where a message sits in a log: its partition and its offset within that partition. */
export interface LogPosition {
  readonly partition: number;
  readonly offset: number;
}

/** A received message. Settle it once: `ack`, `retry`, `reject` or `requeue`; later calls are no-ops. */
export interface Message<T = unknown> {
  /** Unique id, assigned at send (or given by the sender). */
  readonly id: string;
  /** The decoded payload, validated by the destination's schema when it has one. */
  readonly payload: T;
  /** The encoded bytes, as they travelled. */
  readonly body: Uint8Array;
  /** The body's content type as it travelled (the sender's codec), e.g. `application/json`. */
  readonly contentType: string;
  /** Application headers (the `x-omnibus-` control headers are not included, dead-letter ones are). */
  readonly headers: Readonly<Headers>;
  readonly key?: string;
  readonly subject?: string;
  readonly priority?: number;
  /** When the message was sent. */
  readonly timestamp: Date;
  /** 1 on the first delivery, +1 for each retry. */
  readonly attempt: number;
  /** True when this message was delivered before (a retry, a requeue, or a broker redelivery). */
  readonly redelivered: boolean;
  /** Set for log messages (a log's handlers get a `LogMessage`, where it is always there). */
  readonly position?: LogPosition;
  /** The queue, topic or log it was received from. */
  readonly destination: string;
  /** The broker-native message: an escape hatch, not part of the portable contract. */
  readonly raw: unknown;
  /** Aborted when the handler timed out or the consumer is closing. */
  readonly signal: AbortSignal;
  /** True once the message has been settled. */
  readonly settled: boolean;
  /** Done: remove it from the queue / commit it in the log. */
  ack(): Promise<void>;
  /** Failed: redeliver with `attempt + 1` (after `delayMs`), or dead-letter once `maxAttempts` is reached. */
  retry(options?: RetryOptions): Promise<void>;
  /** Poison: send it to the dead-letter destination now, with the reason. */
  reject(reason?: string | Error): Promise<void>;
  /** Put it back without counting an attempt. */
  requeue(): Promise<void>;
}

/** A message read from a log: it always has its position. */
export interface LogMessage<T = unknown> extends Message<T> {
  readonly position: LogPosition;
}

export interface RetryOptions {
  /** Wait this long before redelivery. @default the destination's retry delay */
  readonly delayMs?: number;
  /** Why it failed; recorded in the dead-letter headers if it ends there. */
  readonly reason?: string | Error;
}

/** A handler's outcome: resolve → ack; throw → retry (then dead-letter after `maxAttempts`). */
export type Handler<T> = (message: Message<T>) => unknown;

/** A log reader's handler: its messages always have a `position`. */
export type LogHandler<T> = (message: LogMessage<T>) => unknown;

export interface SendOptions {
  /** A message id; generated when omitted. */
  readonly id?: string;
  readonly headers?: Headers;
  /** Partitioning and ordering key. */
  readonly key?: string;
  /** Queue priority, 0 (lowest) to the queue's `maxPriority`. Needs the `priority` capability. */
  readonly priority?: number;
  /** Do not deliver before this many milliseconds. Needs the `delay` capability. */
  readonly delayMs?: number;
}

export interface PublishOptions {
  /** Dot-separated words, e.g. `orders.eu.created`. No `*` or `#`. Without one, only `#` matches. */
  readonly subject?: string;
  readonly id?: string;
  readonly headers?: Headers;
  readonly key?: string;
}

export interface AppendOptions {
  readonly id?: string;
  readonly headers?: Headers;
  /** Messages with the same key go to the same partition and keep their order. */
  readonly key?: string;
  /**
   * `false`: resolve once the broker confirmed the entry, without its position (the result has no
   * `position`, on every broker). Where the broker does not say where an entry landed (RabbitMQ
   * streams, STOMP), learning it costs a read-back of the entry; this skips that cost.
   * @default true
   */
  readonly position?: boolean;
}

export interface SendResult {
  readonly id: string;
}

export interface AppendResult {
  readonly id: string;
  readonly position: LogPosition;
}

/** One message of `sendBatch`: its payload and the options `send` takes. */
export type SendBatchEntry<TIn> = SendOptions & { readonly payload: TIn };
/** One message of `publishBatch`: its payload and the options `publish` takes. */
export type PublishBatchEntry<TIn> = PublishOptions & { readonly payload: TIn };
/** One message of `appendBatch`: its payload and the options `append` takes. */
/** An entry of `appendBatch`: `append`'s options except `position` (a batch's results always carry it). */
export type AppendBatchEntry<TIn> = Omit<AppendOptions, 'position'> & { readonly payload: TIn };

/**
 * A message of a batch that was not sent (or not confirmed): invalid (`ValidationError` naming its
 * index), refused by a capability, a full buffer (`CapacityError`), or the broker's refusal.
 */
export interface BatchFailure {
  readonly ok: false;
  /** Its index in the batch. */
  readonly index: number;
  readonly error: Error;
}

/** What `sendBatch`/`publishBatch` resolve with, one per message, in order. */
export type SendBatchResult = ({ readonly ok: true } & SendResult) | BatchFailure;
/** What `appendBatch` resolves with, one per message, in order. */
export type AppendBatchResult = ({ readonly ok: true } & AppendResult) | BatchFailure;

/** Batch consumption: the handler gets arrays of messages, each settled on its own. */
export interface BatchOptions {
  /** Most messages in one batch, 1 to 10000. `prefetch` must be at least this. */
  readonly size: number;
  /**
   * How long a batch waits to fill after its first message arrived; a batch also goes as soon as
   * the consumer holds messages that cannot join it (a key already in it). @default 0 (ms): what
   * arrived by the next turn of the event loop
   */
  readonly waitMs?: number;
}

/** Options of a batch consumer: `concurrency` counts batches (up to `concurrency × size` messages held). */
export interface Batched {
  readonly batch: BatchOptions;
}

/**
 * A batch handler. Each message settles on its own: one it settled explicitly (`ack`, `retry`,
 * `reject`, `requeue`) stays so; the others are acked when the handler resolves and retried when
 * it throws, as a single message's handler.
 */
export type BatchHandler<T> = (messages: Message<T>[]) => unknown;

/** A log reader's batch handler: its messages always have a `position`. */
export type LogBatchHandler<T> = (messages: LogMessage<T>[]) => unknown;

/**
 * Settings shared by every destination handle. `T` is what handlers receive (the schema's output),
 * `TIn` what `send`/`publish`/`append` take (the schema's input: fields with defaults optional,
 * values before transforms). Without a schema they are the same type.
 */
export interface DestinationOptions<T, TIn = T> {
  /**
   * Validates on send (before anything leaves the process) and on receive (invalid → dead-letter).
   * What is sent is the payload as given, so the receiving side applies defaults and transforms.
   */
  readonly schema?: StandardSchemaV1<TIn, T>;
  /** Encodes what is sent and decodes it before the schema runs. @default 'json' */
  readonly codec?: CodecName | Codec<TIn> | Codec<T>;
}

/** What happens to messages whose handler fails. */
export interface RetryPolicy {
  /** Deliveries before a failing message is dead-lettered. @default 5 */
  readonly maxAttempts?: number;
  /** Delay before a retry; a function gets the attempt that failed (1-based). @default 0 */
  readonly retryDelayMs?: number | ((attempt: number) => number);
  /** The dead-letter queue. @default `<name>.dlq` */
  readonly deadLetter?: string;
}

export interface QueueOptions<T, TIn = T> extends DestinationOptions<T, TIn>, RetryPolicy {
  /** Highest priority this queue accepts; needed to declare priority queues on brokers such as RabbitMQ. */
  readonly maxPriority?: number;
}

export type TopicOptions<T, TIn = T> = DestinationOptions<T, TIn> & RetryPolicy;

export interface LogOptions<T, TIn = T> extends DestinationOptions<T, TIn>, RetryPolicy {
  /** Partitions when the log is created. @default 1 */
  readonly partitions?: number;
}

export interface ConsumeOptions {
  /** Handlers running at once. Messages with the same key still run one at a time, in order. @default 1 */
  readonly concurrency?: number;
  /** Messages the broker may hand over before they are settled. @default max(concurrency * 2, 10) */
  readonly prefetch?: number;
  /** Aborting it closes the consumer. */
  readonly signal?: AbortSignal;
  /**
   * A handler running longer counts as failed (retry) and its message's signal is aborted; a batch
   * handler's is counted from its call, and every message of the batch it did not settle is
   * retried. @default 30000
   */
  readonly handlerTimeoutMs?: number;
}

export interface SubscribeOptions extends ConsumeOptions, RetryPolicy {
  /** A name makes the subscription durable: it keeps receiving while its subscriber is away. */
  readonly durable?: string;
}

export type ReadFrom =
  | 'earliest'
  | 'latest'
  | { readonly position: LogPosition }
  | { readonly positions: readonly LogPosition[] }
  | { readonly timestamp: Date | number };

export interface ReadOptions extends ConsumeOptions {
  /** A consumer group: commits progress, resumes after its last commit, shares partitions among readers. */
  readonly group?: string;
  /**
   * Where to start. With a group, only when the group has no committed position yet.
   * With positions, partitions that are not named start from the earliest message. @default 'earliest'
   */
  readonly from?: ReadFrom;
}

export interface Consumer extends AsyncDisposable {
  /** Stops taking messages, waits for running handlers, settles what they finished. Idempotent. */
  close(): Promise<void>;
  readonly closed: boolean;
}

/** `T`: what handlers receive; `TIn`: what `send` takes (see `DestinationOptions`). */
export interface Queue<T, TIn = T> {
  readonly name: string;
  /** Resolves when the broker has the message. */
  send(payload: TIn, options?: SendOptions): Promise<SendResult>;
  /**
   * Sends every message the way `send` does (each checked before it is sent, all issued before any
   * is awaited); resolves with one result per message, in order. One failure fails only its message.
   */
  sendBatch(messages: readonly SendBatchEntry<TIn>[]): Promise<SendBatchResult[]>;
  /** With `batch`, the handler gets arrays of up to `batch.size` messages (see `BatchHandler`). */
  consume(handler: BatchHandler<T>, options: ConsumeOptions & Batched): Promise<Consumer>;
  consume(handler: Handler<T>, options?: ConsumeOptions): Promise<Consumer>;
  /** Messages one at a time. Advancing the loop acks the previous message; leaving it requeues it. */
  messages(options?: ConsumeOptions): AsyncIterableIterator<Message<T>>;
  /** Messages ready for delivery now, not counting those out with a consumer (`depth` capability). */
  depth(): Promise<number>;
  /** Removes every message not out with a consumer; how many, where the broker says (`purge` capability). */
  purge(): Promise<number | undefined>;
}

export interface Topic<T, TIn = T> {
  readonly name: string;
  publish(payload: TIn, options?: PublishOptions): Promise<SendResult>;
  /** Publishes every message the way `publish` does; one result per message, in order (see `Queue.sendBatch`). */
  publishBatch(messages: readonly PublishBatchEntry<TIn>[]): Promise<SendBatchResult[]>;
  /** `*` matches one word, `#` zero or more. With `batch`, the handler gets arrays (see `BatchHandler`). */
  subscribe(
    pattern: string,
    handler: BatchHandler<T>,
    options: SubscribeOptions & Batched,
  ): Promise<Consumer>;
  subscribe(pattern: string, handler: Handler<T>, options?: SubscribeOptions): Promise<Consumer>;
  messages(pattern: string, options?: SubscribeOptions): AsyncIterableIterator<Message<T>>;
  /**
   * Deletes the durable subscription `name` and what it holds (`deleteSubscription` capability);
   * false when there was none. Rejects with `ValidationError` while a subscriber of it is attached.
   */
  deleteSubscription(name: string): Promise<boolean>;
}

export interface Log<T, TIn = T> {
  readonly name: string;
  /** With `{ position: false }`, resolves on the broker's confirm with the id only (see `AppendOptions.position`). */
  append(payload: TIn, options: AppendOptions & { readonly position: false }): Promise<SendResult>;
  append(payload: TIn, options?: AppendOptions): Promise<AppendResult>;
  /** Appends every message the way `append` does; one result (with its position) per message, in order. */
  appendBatch(messages: readonly AppendBatchEntry<TIn>[]): Promise<AppendBatchResult[]>;
  /** With `batch`, the handler gets arrays of up to `batch.size` messages (see `BatchHandler`). */
  read(handler: LogBatchHandler<T>, options: ReadOptions & Batched): Promise<Consumer>;
  read(handler: LogHandler<T>, options?: ReadOptions): Promise<Consumer>;
  messages(options?: ReadOptions): AsyncIterableIterator<LogMessage<T>>;
  /**
   * Moves the group's committed position to the start, the end, or the first message at or after a
   * time (`resetGroup` capability). Rejects with `ValidationError` while a reader of the group is attached.
   */
  resetGroup(group: string, to: ResetFrom): Promise<void>;
  /** How far the group is behind the end of the log, per partition and in total (`lag` capability). */
  lag(group: string): Promise<GroupLag>;
}

/** Where `resetGroup` moves a group. */
export type ResetFrom = 'earliest' | 'latest' | { readonly timestamp: Date | number };

export interface GroupLag {
  /** Messages behind, over every partition. */
  readonly total: number;
  readonly partitions: readonly {
    readonly partition: number;
    /** The next offset the group reads; `undefined` where it never committed. */
    readonly committed: number | undefined;
    /** The offset the next append gets. */
    readonly end: number;
    readonly lag: number;
  }[];
}

/**
 * Whose dead letters: a dead-letter queue by name, or the source that failed them — a queue, a
 * topic's durable subscription (or a plain subscription, `<topic>.dlq`), a log read by a group (or
 * without one). `deadLetter` names the queue where the consumer was given one of its own.
 */
export type DeadLetterSource =
  | string
  | { readonly queue: string; readonly deadLetter?: string }
  | { readonly topic: string; readonly subscription?: string; readonly deadLetter?: string }
  | { readonly log: string; readonly group?: string; readonly deadLetter?: string };

/** Where a dead letter failed, from its dead-letter headers. */
export interface DeadLetterOrigin {
  readonly kind: 'queue' | 'topic' | 'log';
  /** The queue, topic or log. */
  readonly name: string;
  /** The durable subscription, for a topic's. */
  readonly subscription?: string;
  /** The group, for a log's read with one. */
  readonly group?: string;
}

/** A dead letter as `peek` shows it (nothing is consumed). */
export interface DeadLetter {
  readonly id: string;
  /** The body decoded by its content type (JSON, text), the bytes otherwise or when it does not decode. */
  readonly payload: unknown;
  readonly body: Uint8Array;
  readonly contentType: string | undefined;
  readonly key: string | undefined;
  readonly subject: string | undefined;
  readonly priority: number | undefined;
  /** Application headers, without the dead-letter headers (those are the fields below). */
  readonly headers: Headers;
  /** Undefined for a message put there by something other than Omnibus. */
  readonly origin: DeadLetterOrigin | undefined;
  readonly reason: string | undefined;
  /** Deliveries tried before it was dead-lettered. */
  readonly attempts: number | undefined;
  readonly firstFailure: Date | undefined;
  /** When it was dead-lettered (its last failure). */
  readonly failedAt: Date | undefined;
  /** When it was first sent. */
  readonly timestamp: Date;
  /** Times it was redriven before. */
  readonly redrives: number;
}

export interface RedriveOptions {
  /** Move at most this many. @default all */
  readonly limit?: number;
  /** Moves only the dead letters it accepts; the others stay (sent to the back of the dead-letter queue). */
  readonly filter?: (letter: DeadLetter) => boolean | Promise<boolean>;
  /**
   * A queue to move them to instead of where they failed. Needed for a log's dead letters and a
   * plain subscription's (appending or publishing again would reach every reader).
   */
  readonly to?: string;
  /** Ends the run when no dead letter arrives for this long. @default 2000 */
  readonly idleMs?: number;
  /** Called after each dead letter handled, with the counts so far (for a progress bar). */
  readonly onProgress?: (progress: RedriveResult) => void;
}

export interface RedriveResult {
  /** This run's id, in `x-omnibus-redrive-run` on every message it moved or left. */
  readonly runId: string;
  /** Dead letters the run started with, where the broker counts (`depth`). */
  readonly total: number | undefined;
  /** Sent back (confirmed), then removed from the dead letters. */
  readonly moved: number;
  /** Left by `filter`, or with nowhere to go (a log's, without `to`): they stay, at the back. */
  readonly skipped: number;
  /** Could not be sent back: they stay where they were and the run stopped (see `error`). */
  readonly failed: number;
  readonly error?: Error;
}

/** The dead letters of one source: count, look, and send them back. */
export interface DeadLetters {
  /** The dead-letter queue. */
  readonly queue: string;
  /** How many wait there, not counting any a consumer holds (`depth` capability). */
  count(): Promise<number>;
  /** The first `limit` (default 10), without consuming them (`browse` capability). */
  peek(limit?: number): Promise<DeadLetter[]>;
  /**
   * Sends them back where they failed (`redrive` capability) — a queue, or their own durable
   * subscription only — with the same id, attempt 1 and without the dead-letter headers; each is
   * confirmed before it leaves the dead letters. A snapshot: what arrives during the run (a message
   * that failed again) waits for the next run.
   */
  redrive(options?: RedriveOptions): Promise<RedriveResult>;
}

export type ConnectionState = 'connecting' | 'connected' | 'reconnecting' | 'closed';

export interface ConsumerHealth {
  readonly kind: 'queue' | 'topic' | 'log';
  readonly destination: string;
  /** The durable subscription or the log group, when there is one. */
  readonly consumer: string | undefined;
  /** Messages received and not settled yet (running, waiting for a handler, or waiting out a retry delay). */
  readonly inFlight: number;
  /** Messages acked, retried and dead-lettered since the consumer started. */
  readonly handled: number;
  readonly retried: number;
  readonly deadLettered: number;
  readonly lastDeliveryAt: Date | undefined;
  readonly lastAckAt: Date | undefined;
  /** When a message was last settled (acked, retried, dead-lettered or requeued). */
  readonly lastProgressAt: Date | undefined;
  /** How long the longest-running handler has been running: a stuck handler shows here. */
  readonly longestRunningMs: number | undefined;
  /** Messages behind the newest, for a log group, where the broker reports it. */
  readonly lag: number | undefined;
}

export interface Health {
  readonly adapter: string;
  readonly state: ConnectionState;
  /** When the state last changed. */
  readonly since: Date;
  /** Sends waiting for the connection to come back. */
  readonly pendingSends: number;
  readonly consumers: readonly ConsumerHealth[];
}

export interface BusEvents {
  state: (state: ConnectionState, error?: Error) => void;
  /** A failure that did not reach a caller: a consumer that could not settle, a lost connection. */
  error: (error: Error) => void;
  /** A message's handler failed and it will be delivered again (`attempt` is the one that failed). */
  retry: (event: SettleEvent) => void;
  /** A message went to its dead-letter queue. */
  deadLetter: (event: SettleEvent) => void;
}

/** A retry or a dead letter, as `bus.on('retry' | 'deadLetter')` reports it. */
export interface SettleEvent {
  readonly kind: 'queue' | 'topic' | 'log';
  readonly destination: string;
  readonly consumer: string | undefined;
  readonly id: string;
  readonly attempt: number;
  readonly reason: string;
  /** Retries: how long until the next attempt. */
  readonly delayMs?: number;
  /** Dead letters: the queue it went to. */
  readonly deadLetter?: string;
}

/**
 * Where Omnibus logs: `(fields, message)`, the order of pino and bunyan, so their loggers pass
 * straight in (`console` works too). With `child`, Omnibus logs through children bound to
 * `{ adapter }` (and `{ destination }` for consumers); without it, the bindings join the fields.
 */
export interface Logger {
  debug(fields: Record<string, unknown>, message: string): void;
  info(fields: Record<string, unknown>, message: string): void;
  warn(fields: Record<string, unknown>, message: string): void;
  error(fields: Record<string, unknown>, message: string): void;
  child?(bindings: Record<string, unknown>): Logger;
}

export interface Bus extends AsyncDisposable {
  /** The adapter's name, e.g. `memory`, `rabbitmq`. */
  readonly adapter: string;
  /** What the connected broker can do, resolved at connect. */
  readonly capabilities: Capabilities;
  readonly closed: boolean;
  /** With a schema, `T` and `TIn` come from it; `bus.queue<Order>(name)` types both as `Order`. */
  queue<T = unknown, TIn = T>(name: string, options?: QueueOptions<T, TIn>): Queue<T, TIn>;
  topic<T = unknown, TIn = T>(name: string, options?: TopicOptions<T, TIn>): Topic<T, TIn>;
  log<T = unknown, TIn = T>(name: string, options?: LogOptions<T, TIn>): Log<T, TIn>;
  health(): Health;
  /** The dead letters of a queue, subscription or log group, or of a dead-letter queue by name. */
  deadLetters(source: DeadLetterSource): DeadLetters;
  on<E extends keyof BusEvents>(event: E, listener: BusEvents[E]): () => void;
  /** Closes every consumer (draining handlers), then the connection. Idempotent. */
  close(): Promise<void>;
}

export type { Capabilities, Requirements };
