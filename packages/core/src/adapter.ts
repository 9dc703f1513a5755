/**
 * The adapter interface: what a broker adapter implements. It is small on purpose. Core does the
 * shared work once — codecs, schema validation, name and subject checks, capability checks, the
 * retry policy and `attempt` counting, dead-letter headers, concurrency with per-key ordering,
 * handler timeouts, draining on close, the send buffer during outages — so an adapter only moves
 * bytes and settles deliveries on its broker.
 *
 * An adapter package exports a factory maker as its default export: `(options?) => AdapterFactory`.
 */
import type { Capabilities } from './capabilities.js';
import type { ConnectionState, Headers, Logger, LogPosition } from './types.js';
import type { ParsedUrl } from './url.js';

export interface AdapterFactory {
  /** Short name used in errors and `bus.adapter`, e.g. `rabbitmq`. */
  readonly name: string;
  /** URL schemes this adapter serves, e.g. `['amqp', 'amqps']`. */
  readonly schemes: readonly string[];
  /** True when its URLs need no host (`memory://`). @default false */
  readonly hostOptional?: boolean;
  /**
   * Connects and resolves once the broker is usable, with capabilities resolved for what is on the
   * other end. Rejects with `ConfigError` for bad options (every problem at once) and
   * `ConnectionError` when the broker cannot be reached.
   */
  create(target: AdapterTarget, context: AdapterContext): Promise<Adapter>;
}

export interface AdapterTarget {
  /** The parsed URL, credentials included: never log it; use `url.redacted`. */
  readonly url: ParsedUrl;
  /** Options from the URL's query and the object config, merged, not yet validated (see `parseOptions`). */
  readonly options: Readonly<Record<string, unknown>>;
}

export interface AdapterContext {
  /** Stable id of this client; adapters derive broker client ids from it. */
  readonly clientId: string;
  /** The application's logger bound to `{ adapter }`: log as `(fields, message)`. */
  readonly logger: Logger;
  /** Report connection state changes; core buffers sends while not `connected`. */
  setState(state: ConnectionState, error?: Error): void;
  /** Report an error no caller will see (e.g. a consumer the broker cancelled). */
  reportError(error: Error): void;
}

/** A message on its way out, already encoded and validated by core. */
export interface OutgoingMessage {
  readonly id: string;
  readonly body: Uint8Array;
  /** Application headers plus `x-omnibus-` control headers. Adapters carry them all, as strings. */
  readonly headers: Headers;
  readonly contentType: string;
  readonly key?: string;
  readonly subject?: string;
  readonly priority?: number;
  readonly delayMs?: number;
  /** Milliseconds since the epoch. */
  readonly timestamp: number;
}

export interface QueueSpec {
  readonly name: string;
  /** Declared priority range, when the application set one. */
  readonly maxPriority?: number;
}

export interface TopicSpec {
  readonly name: string;
}

export interface LogSpec {
  readonly name: string;
  readonly partitions: number;
}

export interface ConsumeSpec {
  /** Deliveries the broker may have outstanding (unsettled) for this consumer. */
  readonly prefetch: number;
}

export interface SubscriptionSpec extends ConsumeSpec {
  /** Validated pattern with `*` and `#`. An adapter without native routing filters with `compilePattern`. */
  readonly pattern: string;
  /** Set for durable subscriptions: a stable name unique within the topic. */
  readonly durable?: string;
}

export type ResolvedReadFrom =
  | { readonly kind: 'earliest' }
  | { readonly kind: 'latest' }
  | { readonly kind: 'positions'; readonly positions: readonly LogPosition[] }
  | { readonly kind: 'timestamp'; readonly timestamp: number };

/** Where `resetGroup` moves a group: the start, the end, or the first message at or after a time. */
export type ResetTarget =
  | { readonly kind: 'earliest' }
  | { readonly kind: 'latest' }
  | { readonly kind: 'timestamp'; readonly timestamp: number };

/** One partition of a group's lag. */
export interface PartitionLag {
  readonly partition: number;
  /** The group's committed offset (the next it reads); `undefined` when it never committed here. */
  readonly committed: number | undefined;
  /** The offset the next append to this partition gets. */
  readonly end: number;
  /** Messages between `committed` (or the earliest retained one, without a commit) and `end`. */
  readonly lag: number;
}

/**
 * A message a queue holds, as `browse` sees it: the fields of a `Delivery`, without settlement
 * (browsing settles nothing).
 */
export type BrowsedMessage = Pick<
  Delivery,
  'body' | 'headers' | 'id' | 'contentType' | 'key' | 'subject' | 'priority' | 'timestamp' | 'attempt' | 'raw'
>;

export interface ReadSpec extends ConsumeSpec {
  readonly group?: string;
  readonly from: ResolvedReadFrom;
}

/**
 * One received message, as the transport has it. Core reads its envelope (`readEnvelope`), decodes
 * it, runs the handler and settles it exactly once: ack, a negative acknowledgement, or a copy sent
 * back through `Adapter.sendTo` / to a dead-letter queue and then an ack. A delivery carries no
 * retry or dead-letter logic of its own.
 */
export interface Delivery {
  readonly body: Uint8Array;
  /**
   * Every header the message carries, as text, envelope (`x-omnibus-*`) headers included; headers
   * the broker adds for itself (`x-death`, routing internals…) left out.
   */
  readonly headers: Headers;
  /** Fields the protocol carries natively, when present; core falls back to the envelope for each. */
  readonly id?: string | undefined;
  readonly contentType?: string | undefined;
  readonly key?: string | undefined;
  readonly subject?: string | undefined;
  readonly priority?: number | undefined;
  /** Milliseconds since the epoch, when it was sent. */
  readonly timestamp?: number | undefined;
  /** The broker's own delivery count when it keeps one; core also reads `x-omnibus-attempt`. */
  readonly attempt?: number | undefined;
  /** The broker says it delivered this message before. */
  readonly redelivered: boolean;
  readonly position?: LogPosition | undefined;
  /**
   * An address of this adapter (for `Adapter.sendTo`) where a copy of this message reaches this
   * consumer's source and no other: core retries an unkeyed message by a confirmed copy there, then
   * acks this one. Absent (logs, protocols without such an address): core retries in place.
   */
  readonly retryAddress?: string | undefined;
  readonly raw: unknown;
  /** Success: remove (queue, topic) or mark done for commit (log). Must not throw for a lost connection: the broker redelivers. */
  ack(): Promise<void>;
  /** Negative acknowledgement that puts it back at once without counting an attempt, where the broker has one. Without it, core runs the handler again in process. */
  requeue?(): Promise<void>;
  /** Give it back to the broker unsettled (consumer closing), to be redelivered elsewhere, where the broker can. */
  release?(): void;
}

/**
 * Hands a delivery to core. What it returns settles once core has settled the delivery (after the
 * handler ran): `await` it, or pass a callback to `then`. Push-based adapters may ignore it (their
 * prefetch bounds what is outstanding), pull-based ones may wait on it for back-pressure. It never
 * fails.
 */
export type Deliver = (delivery: Delivery) => Settled;

/**
 * A thenable, not a promise: core makes no promise per delivery for adapters that ignore it.
 * `onSettled` runs once, at once when the delivery is settled already.
 */
export interface Settled {
  then(onSettled: () => void, onError?: (error: unknown) => void): void;
}

export interface Subscription {
  /** Optional: messages behind the newest for this reader's group, where the broker reports it. */
  lag?(): number | undefined;
  /** Optional: stop delivering new messages while settlements of outstanding ones still work. */
  stop?(): Promise<void>;
  /** Release the subscription. Deliveries not settled by now go back to the broker. Idempotent. */
  close(): Promise<void>;
}

/**
 * What `Adapter.sendBatch`/`publishBatch` resolve with: `undefined` when every message was
 * confirmed, else one entry per message, in order: `undefined` where it was confirmed, its error
 * where it failed.
 */
export type BatchOutcome = readonly (Error | undefined)[] | undefined;

/**
 * A connected adapter: a transport. Every method is there but the optional `sendBatch` and
 * `publishBatch`; core checks `capabilities` before it calls one, so a semantic the capabilities
 * mark `none` is never reached (implement it with `unsupported()`). Capabilities are fixed when
 * `create` resolves.
 */
export interface Adapter {
  readonly name: string;
  readonly capabilities: Capabilities;

  /** Resolves when the broker confirmed the message is stored. Rejects with `PublishError`, `ConnectionError`… */
  send(queue: QueueSpec, message: OutgoingMessage): Promise<void>;
  /**
   * Optional: `send` of several messages to one queue in one call (`sendBatch`). Resolves once each
   * message is confirmed or failed: `undefined` when all were confirmed, else an array in the order
   * of `messages` with `undefined` for a confirmed message and the error of a failed one. Reject
   * only when no message was taken. A message that failed with a retriable `ConnectionError` (alone,
   * or the whole call with it) is sent again by core, alone, with `send`, once reconnected. Core
   * calls it only while connected; without it, core sends each message with `send`.
   */
  sendBatch?(queue: QueueSpec, messages: readonly OutgoingMessage[]): Promise<BatchOutcome>;
  /** Starts competing consumption: each message goes to one consumer of the queue. */
  consume(queue: QueueSpec, spec: ConsumeSpec, deliver: Deliver): Promise<Subscription>;

  /** Resolves when the broker confirmed the message (routed to zero subscriptions is not an error). */
  publish(topic: TopicSpec, message: OutgoingMessage): Promise<void>;
  /** Optional: `publish` of several messages in one call (`publishBatch`), answered as `sendBatch`. */
  publishBatch?(topic: TopicSpec, messages: readonly OutgoingMessage[]): Promise<BatchOutcome>;
  /** Every matching message published after this resolves is delivered (durable ones also while away). */
  subscribe(topic: TopicSpec, spec: SubscriptionSpec, deliver: Deliver): Promise<Subscription>;

  /**
   * Resolves with the stored position once the broker confirmed it. `position: false`: the caller
   * does not want it; an adapter that pays to learn it (a read-back) may resolve with undefined on
   * the confirm instead.
   */
  append(log: LogSpec, message: OutgoingMessage, position?: boolean): Promise<LogPosition | undefined>;
  /** Delivers in position order per partition; with a group, commits acked positions (contiguously) and resumes. */
  read(log: LogSpec, spec: ReadSpec, deliver: Deliver): Promise<Subscription>;

  /**
   * Sends a copy of a received message to a delivery's `retryAddress`, confirmed like `send`.
   * `message.delayMs` is set only when the adapter's `delay` capability is not `none`.
   */
  sendTo(address: string, message: OutgoingMessage): Promise<void>;

  // Operations: each is a capability of its own (`depth`, `purge`, `browse`, `redriveSubscription`,
  // `deleteSubscription`, `resetGroup`, `lag`); where it is `none`, implement it with
  // `unsupported(name, feature)`. docs/adapters.md#operations states each contract in full.
  // (`redrive` of a queue's dead letters needs no method: core consumes and sends.)

  /**
   * `depth`: how many messages of the queue are ready for delivery now — not those out with a
   * consumer and not yet settled, nor delayed ones not yet due. A queue that does not exist: 0 (not
   * created, where the broker can tell without creating it). Exact once `send` has resolved.
   */
  depth(queue: QueueSpec): Promise<number>;
  /**
   * `purge`: removes every message of the queue not out with a consumer (delayed ones too, where
   * the broker holds them in the queue); resolves with how many, where the broker says (else
   * `undefined`). A queue that does not exist: 0.
   */
  purge(queue: QueueSpec): Promise<number | undefined>;
  /**
   * `browse`: up to `limit` of the queue's messages in delivery order, without consuming, locking or
   * changing them (no attempt counted, no redelivered flag set). Fewer (or none) when it holds fewer.
   */
  browse(queue: QueueSpec, limit: number): Promise<BrowsedMessage[]>;
  /**
   * `redriveSubscription`: an address for `sendTo` where a copy reaches the durable subscription `durable` of
   * `topic` and no other (the same kind of address as a delivery's `retryAddress`). Rejects with
   * `ValidationError` when that durable subscription does not exist.
   */
  subscriptionAddress(topic: TopicSpec, durable: string): Promise<string>;
  /**
   * `deleteSubscription`: deletes the durable subscription and the messages it holds, so publishes
   * no longer go to it. Resolves false when there was none. Rejects with `ValidationError` (and
   * deletes nothing) while a subscriber of it is attached, on this connection or another.
   */
  deleteSubscription(topic: TopicSpec, durable: string): Promise<boolean>;
  /**
   * `resetGroup`: sets the group's committed position of every partition to `to` (earliest, latest,
   * or the first message at or after the timestamp, else the end), so its next reader starts there.
   * Rejects with `ValidationError` (and moves nothing) while a reader of the group is attached.
   */
  resetGroup(log: LogSpec, group: string, to: ResetTarget): Promise<void>;
  /** `lag`: per partition, the group's committed offset, the end of the log and the difference. */
  groupLag(log: LogSpec, group: string): Promise<PartitionLag[]>;

  /** Closes the connection. Core has closed every subscription first. Idempotent. */
  close(): Promise<void>;
}
