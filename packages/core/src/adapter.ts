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

export interface ReadSpec extends ConsumeSpec {
  readonly group?: string;
  readonly from: ResolvedReadFrom;
}

/** One received message, before decoding. Core settles it exactly once. */
export interface Delivery {
  readonly id: string;
  readonly body: Uint8Array;
  readonly headers: Headers;
  readonly key?: string | undefined;
  readonly subject?: string | undefined;
  readonly priority?: number | undefined;
  /** Milliseconds since the epoch, when it was sent. */
  readonly timestamp: number;
  /** The broker's own delivery count when it keeps one; core also reads `x-omnibus-attempt`. */
  readonly attempt?: number | undefined;
  /** The broker says it delivered this message before. */
  readonly redelivered: boolean;
  readonly position?: LogPosition | undefined;
  readonly raw: unknown;
  /** Success: remove (queue, topic) or mark done for commit (log). Must not throw for a lost connection: the broker redelivers. */
  ack(): Promise<void>;
  /**
   * Optional native retry: make the message available again after `delayMs`, carrying `headers`
   * (which include the new `x-omnibus-attempt`), then remove this delivery. Without it, core
   * retries in process: it holds the delivery and runs the handler again after the delay.
   * Never implemented for logs (a log's order must hold).
   */
  retry?(options: {
    readonly delayMs: number;
    readonly attempt: number;
    readonly headers: Headers;
  }): Promise<void>;
  /**
   * Optional native dead-letter: move the message to `destination` (a queue) with `headers`, then
   * remove this delivery. Without it, core sends a copy to that queue and then acks.
   */
  deadLetter?(options: { readonly destination: string; readonly headers: Headers }): Promise<void>;
  /** Optional: put it back now without counting an attempt. Without it, core runs the handler again in process. */
  requeue?(): Promise<void>;
  /** Optional: give it back to the broker unsettled (consumer closing), to be redelivered elsewhere. */
  release?(): void;
}

/**
 * Hands a delivery to core. The promise resolves once core has settled it (after the handler ran);
 * push-based adapters may ignore it (their prefetch bounds what is outstanding), pull-based ones
 * may await it for back-pressure. It never rejects.
 */
export type Deliver = (delivery: Delivery) => Promise<void>;

export interface Subscription {
  /** Optional: stop delivering new messages while settlements of outstanding ones still work. */
  stop?(): Promise<void>;
  /** Release the subscription. Deliveries not settled by now go back to the broker. Idempotent. */
  close(): Promise<void>;
}

/**
 * A connected adapter. Methods of a semantic the adapter's capabilities mark `none` are left out;
 * core never calls them (it throws `UnsupportedCapabilityError` first).
 */
export interface Adapter {
  readonly name: string;
  readonly capabilities: Capabilities;

  /** Resolves when the broker confirmed the message is stored. Rejects with `PublishError`, `ConnectionError`… */
  send?(queue: QueueSpec, message: OutgoingMessage): Promise<void>;
  /** Starts competing consumption: each message goes to one consumer of the queue. */
  consume?(queue: QueueSpec, spec: ConsumeSpec, deliver: Deliver): Promise<Subscription>;

  /** Resolves when the broker confirmed the message (routed to zero subscriptions is not an error). */
  publish?(topic: TopicSpec, message: OutgoingMessage): Promise<void>;
  /** Every matching message published after this resolves is delivered (durable ones also while away). */
  subscribe?(topic: TopicSpec, spec: SubscriptionSpec, deliver: Deliver): Promise<Subscription>;

  /** Resolves with the stored position once the broker confirmed it. */
  append?(log: LogSpec, message: OutgoingMessage): Promise<LogPosition>;
  /** Delivers in position order per partition; with a group, commits acked positions (contiguously) and resumes. */
  read?(log: LogSpec, spec: ReadSpec, deliver: Deliver): Promise<Subscription>;

  /** Closes the connection. Core has closed every subscription first. Idempotent. */
  close(): Promise<void>;
}
