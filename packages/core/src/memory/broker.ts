import { CONFIRMED } from '../connection.js';
import { delay } from '../deadlines.js';
import { compilePattern, type SubjectMatcher } from '../routing.js';
import type { Headers } from '../types.js';
import { MemoryLog } from './log.js';
import { MemoryQueue } from './queue.js';
import type { QueuedItem, StoredMessage } from './types.js';

/** Something connected to the broker that a restart disconnects. */
export interface MemorySession {
  disconnect(): void;
  reconnect(): void;
}

export interface TopicSubscription {
  readonly id: string;
  readonly durable: boolean;
  matches: SubjectMatcher;
  pattern: string;
  readonly queue: MemoryQueue;
}

const DEFAULT_MAX_QUEUE_LENGTH = 100_000;
const brokers = new Map<string, MemoryBroker>();

/**
 * The in-memory broker behind `memory://name`: one per name per process, shared by every
 * connection to that name and outliving them (durable queues and subscriptions persist).
 */
export class MemoryBroker {
  maxQueueLength = DEFAULT_MAX_QUEUE_LENGTH;
  private readonly queues = new Map<string, MemoryQueue>();
  private readonly topics = new Map<string, Map<string, TopicSubscription>>();
  private readonly logs = new Map<string, MemoryLog>();
  private readonly sessions = new Set<MemorySession>();
  private nextSubscription = 1;
  private down = false;

  constructor(readonly name: string) {}

  get available(): boolean {
    return !this.down;
  }

  queue(name: string): MemoryQueue {
    let queue = this.queues.get(name);
    if (queue === undefined) {
      queue = new MemoryQueue(name, () => this.maxQueueLength);
      this.queues.set(name, queue);
    }
    return queue;
  }

  /** The queue `name` when it exists (admin operations do not create queues). */
  existingQueue(name: string): MemoryQueue | undefined {
    return this.queues.get(name);
  }

  /** The durable subscription `durable` of `topic`, when it exists. */
  durableSubscription(topic: string, durable: string): TopicSubscription | undefined {
    const subscription = this.topics.get(topic)?.get(durable);
    return subscription?.durable === true ? subscription : undefined;
  }

  /** Deletes a durable subscription and what it holds; false when there is none. */
  deleteDurable(topic: string, durable: string): boolean {
    const subscription = this.durableSubscription(topic, durable);
    if (subscription === undefined) return false;
    this.topics.get(topic)?.delete(durable);
    subscription.queue.clear();
    return true;
  }

  /**
   * Puts a message on queue `name` as another producer in the process would: no id, no Omnibus
   * envelope, only bytes and headers (the contract suite's `inject` for memory).
   */
  putForeign(
    name: string,
    message: { readonly body: Uint8Array; readonly headers?: Headers; readonly contentType?: string },
  ): void {
    this.queue(name).enqueue({
      message: {
        id: '',
        body: message.body,
        headers: { ...message.headers },
        contentType: message.contentType ?? 'application/octet-stream',
        key: undefined,
        subject: undefined,
        priority: 0,
        timestamp: Date.now(),
      },
      attempt: 1,
      redelivered: false,
    });
  }

  /**
   * Routes to every matching subscription, or to none; fails whole when one of them is full.
   * Resolves like `MemoryQueue.flow`: at once, or once a backlogged subscription's consumers caught up.
   */
  publish(topic: string, message: StoredMessage): Promise<void> {
    const subscriptions = this.topics.get(topic);
    if (subscriptions === undefined) return CONFIRMED;
    let targets: MemoryQueue[] | undefined;
    let only: MemoryQueue | undefined;
    for (const subscription of subscriptions.values()) {
      if (!subscription.matches(message.subject)) continue;
      subscription.queue.assertRoom(1);
      if (only === undefined) only = subscription.queue;
      else if (targets === undefined) targets = [only, subscription.queue];
      else targets.push(subscription.queue);
    }
    if (only === undefined) return CONFIRMED;
    const item: QueuedItem = { message, attempt: 1, redelivered: false };
    if (targets === undefined) {
      only.enqueue(item, 0, true);
      return only.flow();
    }
    let flow = CONFIRMED;
    for (const target of targets) {
      target.enqueue(item, 0, true);
      if (flow === CONFIRMED) flow = target.flow();
    }
    return flow;
  }

  /** Creates a subscription, or returns the durable one of that name (with its waiting messages). */
  subscribe(topic: string, pattern: string, durable: string | undefined): TopicSubscription {
    let subscriptions = this.topics.get(topic);
    if (subscriptions === undefined) {
      subscriptions = new Map();
      this.topics.set(topic, subscriptions);
    }
    const id = durable === undefined ? `~${this.nextSubscription++}` : durable;
    const existing = subscriptions.get(id);
    if (existing !== undefined) {
      existing.pattern = pattern;
      existing.matches = compilePattern(pattern);
      return existing;
    }
    const subscription: TopicSubscription = {
      id,
      durable: durable !== undefined,
      pattern,
      matches: compilePattern(pattern),
      queue: new MemoryQueue(`${topic}/${id}`, () => this.maxQueueLength),
    };
    subscriptions.set(id, subscription);
    return subscription;
  }

  /**
   * The queue behind an address from `addressOf`: a named queue, or one subscription's own queue
   * (so a copy sent there reaches that subscription and no other). Undefined when it is gone.
   */
  addressed(address: string): MemoryQueue | undefined {
    if (address.startsWith('q:')) return this.queue(address.slice(2));
    const [topic, id] = address.slice(2).split('\u0000');
    return this.topics.get(topic ?? '')?.get(id ?? '')?.queue;
  }

  /** Deletes a non-durable subscription and what it held. */
  unsubscribe(topic: string, subscription: TopicSubscription): void {
    if (subscription.durable) return;
    this.topics.get(topic)?.delete(subscription.id);
    subscription.queue.clear();
  }

  log(name: string, partitions: number): MemoryLog {
    let log = this.logs.get(name);
    if (log === undefined) {
      log = new MemoryLog(name, partitions);
      this.logs.set(name, log);
    }
    return log;
  }

  /** Rebalances a consumer group of a log (see `MemoryLog.rebalanceGroup`); false when there is none. */
  rebalance(log: string, group: string): boolean {
    return this.logs.get(log)?.rebalanceGroup(group) ?? false;
  }

  /**
   * Empties the broker: every queue, subscription and log goes, with its messages and consumers.
   * For tests, once their connections are closed; a consumer still attached receives nothing more.
   */
  reset(): void {
    for (const queue of this.queues.values()) queue.clear();
    for (const subscriptions of this.topics.values()) for (const s of subscriptions.values()) s.queue.clear();
    this.queues.clear();
    this.topics.clear();
    this.logs.clear();
  }

  attach(session: MemorySession): void {
    this.sessions.add(session);
  }

  detach(session: MemorySession): void {
    this.sessions.delete(session);
  }

  /**
   * Simulates a broker restart, for reconnection tests: every connection drops (unacked messages
   * return to their queues, non-durable subscriptions vanish), and comes back after `downMs`.
   * Durable state survives, as on a real broker with persistent storage.
   */
  async restart(downMs = 50): Promise<void> {
    this.down = true;
    const sessions = [...this.sessions];
    for (const session of sessions) session.disconnect();
    await delay(downMs);
    this.down = false;
    for (const session of sessions) if (this.sessions.has(session)) session.reconnect();
  }
}

/** The address of a named queue, or of a topic subscription's queue, for `MemoryBroker.addressed`. */
export function addressOf(queue: string): string;
export function addressOf(topic: string, subscription: TopicSubscription): string;
export function addressOf(name: string, subscription?: TopicSubscription): string {
  return subscription === undefined ? `q:${name}` : `s:${name}\u0000${subscription.id}`;
}

/** The broker behind `memory://name` (`default` when unnamed). */
export function memoryBroker(name = 'default'): MemoryBroker {
  let broker = brokers.get(name);
  if (broker === undefined) {
    broker = new MemoryBroker(name);
    brokers.set(name, broker);
  }
  return broker;
}
