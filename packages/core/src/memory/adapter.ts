/**
 * The in-memory adapter (`memory://name`): the embedded default and the reference implementation
 * of the adapter interface. Every capability is native; it passes the whole contract suite. Under a
 * profile (`memory://name?profile=kafka`) it reports that broker's capabilities instead.
 */
import type {
  Adapter,
  AdapterContext,
  AdapterFactory,
  BatchOutcome,
  BrowsedMessage,
  ConsumeSpec,
  Deliver,
  LogSpec,
  OutgoingMessage,
  PartitionLag,
  QueueSpec,
  ReadSpec,
  ResetTarget,
  Subscription,
  SubscriptionSpec,
  TopicSpec,
} from '../adapter.js';
import { type Capabilities, declareCapabilities, FEATURES } from '../capabilities.js';
import { readOptions } from '../config.js';
import { CONFIRMED } from '../connection.js';
import { BaseDelivery } from '../delivery.js';
import { ConnectionError, ValidationError } from '../errors.js';
import { type OptionsOf, option } from '../options.js';
import type { LogPosition } from '../types.js';
import { addressOf, type MemoryBroker, type MemorySession, memoryBroker } from './broker.js';
import { LogReader, type LogRecord, type MemoryLog } from './log.js';
import { memoryProfile } from './profiles.js';
import type { MemoryQueue, QueueConsumer } from './queue.js';
import { type QueuedItem, type StoredMessage, stored } from './types.js';

const memoryOptions = {
  /** Messages one queue or subscription may hold (ready, delayed and unacked). @default 100000 */
  maxQueueLength: option.int({ min: 1 }),
  /**
   * Behave like another broker: its capabilities (what core allows) and the quirks an application
   * would see, e.g. `kafka`, `stomp-activemq`. Profiles are registered with `registerProfile`;
   * `@omnibus/testing` registers one per adapter. @default none: every capability native
   */
  profile: option.string(),
};

export type MemoryOptions = OptionsOf<typeof memoryOptions>;

export const MEMORY_CAPABILITIES: Capabilities = declareCapabilities({
  native: FEATURES,
  ordering: 'key',
  limits: { maxPriority: 255, maxMessageBytes: 16 * 1024 * 1024 },
});

/** The in-memory adapter. `memory://name` picks (or creates) the broker called `name` in this process. */
export function memory(defaults: MemoryOptions = {}): AdapterFactory {
  return {
    name: 'memory',
    schemes: ['memory'],
    hostOptional: true,
    async create(target, context) {
      const { options } = readOptions('memory', memoryOptions, { ...defaults, ...target.options });
      const broker = memoryBroker(target.url.hosts[0]?.host ?? 'default');
      if (options.maxQueueLength !== undefined) broker.maxQueueLength = options.maxQueueLength;
      const profile = options.profile === undefined ? undefined : memoryProfile(options.profile);
      return new MemoryAdapter(broker, context, profile?.capabilities ?? MEMORY_CAPABILITIES);
    },
  };
}

interface Attachable {
  attach(): void;
  detach(): void;
}

class MemoryAdapter implements Adapter, MemorySession {
  readonly name = 'memory';
  private connected = true;
  private readonly subscriptions = new Set<Attachable>();

  constructor(
    private readonly broker: MemoryBroker,
    private readonly context: AdapterContext,
    readonly capabilities: Capabilities,
  ) {
    broker.attach(this);
  }

  // send, sendTo and publish take the message at once: `CONFIRMED`, so core sets no deadline for it,
  // unless the queue is backlogged while consumed (`MemoryQueue.flow`): then the confirmation waits
  // for the consumers to take messages off, so a producer cannot run away from its consumers.
  send(queue: QueueSpec, message: OutgoingMessage): Promise<void> {
    try {
      this.assertConnected();
      const target = this.broker.queue(queue.name);
      target.enqueue(fresh(message), message.delayMs ?? 0);
      return target.flow();
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /** `send` of each message; a full queue fails the messages that do not fit, the others are taken. */
  sendBatch(queue: QueueSpec, messages: readonly OutgoingMessage[]): Promise<BatchOutcome> {
    try {
      this.assertConnected();
      const target = this.broker.queue(queue.name);
      let failed: Error[] | undefined;
      for (let i = 0; i < messages.length; i++) {
        const message = messages[i]!;
        try {
          target.enqueue(fresh(message), message.delayMs ?? 0);
        } catch (error) {
          failed ??= new Array(messages.length);
          failed[i] = error as Error;
        }
      }
      return answer(target.flow(), failed);
    } catch (error) {
      return Promise.reject(error);
    }
  }

  sendTo(address: string, message: OutgoingMessage): Promise<void> {
    try {
      this.assertConnected();
      const queue = this.broker.addressed(address);
      // A subscription that is gone takes its copies with it, as its queue would on a broker.
      if (queue === undefined) return CONFIRMED;
      queue.enqueue(fresh(message), message.delayMs ?? 0);
      return queue.flow();
    } catch (error) {
      return Promise.reject(error);
    }
  }

  async consume(queue: QueueSpec, spec: ConsumeSpec, deliver: Deliver): Promise<Subscription> {
    this.assertConnected();
    return this.track(
      new QueueSubscription(
        () => ({ queue: this.broker.queue(queue.name), address: addressOf(queue.name) }),
        spec.prefetch,
        deliver,
      ),
    );
  }

  publish(topic: TopicSpec, message: OutgoingMessage): Promise<void> {
    try {
      this.assertConnected();
      return this.broker.publish(topic.name, stored(message));
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /** `publish` of each message; a subscription's full queue fails the messages that do not fit. */
  publishBatch(topic: TopicSpec, messages: readonly OutgoingMessage[]): Promise<BatchOutcome> {
    try {
      this.assertConnected();
      let failed: Error[] | undefined;
      let flow = CONFIRMED;
      for (let i = 0; i < messages.length; i++) {
        try {
          const taken = this.broker.publish(topic.name, stored(messages[i]!));
          if (flow === CONFIRMED) flow = taken;
        } catch (error) {
          failed ??= new Array(messages.length);
          failed[i] = error as Error;
        }
      }
      return answer(flow, failed);
    } catch (error) {
      return Promise.reject(error);
    }
  }

  async subscribe(topic: TopicSpec, spec: SubscriptionSpec, deliver: Deliver): Promise<Subscription> {
    this.assertConnected();
    return this.track(
      new QueueSubscription(
        () => {
          const subscription = this.broker.subscribe(topic.name, spec.pattern, spec.durable);
          return {
            queue: subscription.queue,
            address: addressOf(topic.name, subscription),
            drop: () => this.broker.unsubscribe(topic.name, subscription),
          };
        },
        spec.prefetch,
        deliver,
      ),
    );
  }

  async append(log: LogSpec, message: OutgoingMessage): Promise<LogPosition> {
    this.assertConnected();
    return this.broker.log(log.name, log.partitions).append(stored(message));
  }

  async read(log: LogSpec, spec: ReadSpec, deliver: Deliver): Promise<Subscription> {
    this.assertConnected();
    return this.track(new LogSubscription(this.broker.log(log.name, log.partitions), spec, deliver));
  }

  async depth(queue: QueueSpec): Promise<number> {
    this.assertConnected();
    return this.broker.existingQueue(queue.name)?.readyCount ?? 0;
  }

  async purge(queue: QueueSpec): Promise<number> {
    this.assertConnected();
    return this.broker.existingQueue(queue.name)?.purge() ?? 0;
  }

  async browse(queue: QueueSpec, limit: number): Promise<BrowsedMessage[]> {
    this.assertConnected();
    const items = this.broker.existingQueue(queue.name)?.browse(limit) ?? [];
    return items.map(({ message: m, attempt }) => ({
      id: m.id,
      body: m.body,
      headers: m.headers,
      contentType: m.contentType,
      key: m.key,
      subject: m.subject,
      priority: m.priority,
      timestamp: m.timestamp,
      attempt,
      raw: m,
    }));
  }

  async subscriptionAddress(topic: TopicSpec, durable: string): Promise<string> {
    this.assertConnected();
    const subscription = this.broker.durableSubscription(topic.name, durable);
    if (subscription === undefined) {
      throw new ValidationError(`topic "${topic.name}" has no durable subscription "${durable}"`, [], {
        adapter: 'memory',
      });
    }
    return addressOf(topic.name, subscription);
  }

  async deleteSubscription(topic: TopicSpec, durable: string): Promise<boolean> {
    this.assertConnected();
    const subscription = this.broker.durableSubscription(topic.name, durable);
    if (subscription === undefined) return false;
    if (subscription.queue.consumerCount > 0) {
      throw new ValidationError(
        `durable subscription "${durable}" of "${topic.name}" has ${subscription.queue.consumerCount} subscriber(s) attached; close them first`,
        [],
        { adapter: 'memory' },
      );
    }
    return this.broker.deleteDurable(topic.name, durable);
  }

  async resetGroup(log: LogSpec, group: string, to: ResetTarget): Promise<void> {
    this.assertConnected();
    const stored = this.broker.log(log.name, log.partitions);
    if (stored.hasMembers(group)) {
      throw new ValidationError(
        `consumer group "${group}" of "${log.name}" has readers attached; close them first`,
        [],
        { adapter: 'memory' },
      );
    }
    stored.resetGroup(group, to);
  }

  async groupLag(log: LogSpec, group: string): Promise<PartitionLag[]> {
    this.assertConnected();
    const stored = this.broker.log(log.name, log.partitions);
    return stored.partitions.map((records, partition) => {
      const committed = stored.committed(group, partition);
      return { partition, committed, end: records.length, lag: records.length - (committed ?? 0) };
    });
  }

  async close(): Promise<void> {
    for (const subscription of this.subscriptions) subscription.detach();
    this.subscriptions.clear();
    this.connected = false;
    this.broker.detach(this);
  }

  disconnect(): void {
    this.connected = false;
    for (const subscription of this.subscriptions) subscription.detach();
    this.context.setState(
      'reconnecting',
      new ConnectionError('memory broker restarting', { adapter: 'memory' }),
    );
  }

  reconnect(): void {
    this.connected = true;
    for (const subscription of this.subscriptions) subscription.attach();
    this.context.setState('connected');
  }

  private track<S extends Attachable & Subscription>(subscription: S): S {
    subscription.attach();
    this.subscriptions.add(subscription);
    const close = subscription.close.bind(subscription);
    subscription.close = async () => {
      this.subscriptions.delete(subscription);
      await close();
    };
    return subscription;
  }

  private assertConnected(): void {
    if (!this.connected || !this.broker.available) {
      throw new ConnectionError('not connected to the memory broker (restarting)', { adapter: 'memory' });
    }
  }
}

/** Competing consumption of one queue (a work queue, or a topic subscription's own queue). */
class QueueSubscription implements Attachable, Subscription {
  private queue: MemoryQueue | undefined;
  private consumer: QueueConsumer | undefined;
  private drop: (() => void) | undefined;

  constructor(
    private readonly resolve: () => { queue: MemoryQueue; address: string; drop?: () => void },
    private readonly prefetch: number,
    private readonly deliver: Deliver,
  ) {}

  attach(): void {
    const { queue, address, drop } = this.resolve();
    const consumer: QueueConsumer = {
      credit: this.prefetch,
      push: (item, tag) => void this.deliver(new QueueDelivery(queue, address, item, tag)),
    };
    this.queue = queue;
    this.consumer = consumer;
    this.drop = drop;
    queue.addConsumer(consumer);
  }

  detach(): void {
    if (this.queue !== undefined && this.consumer !== undefined) this.queue.removeConsumer(this.consumer);
    this.drop?.();
    this.queue = undefined;
    this.consumer = undefined;
    this.drop = undefined;
  }

  async stop(): Promise<void> {
    // No credit, no new deliveries; settling outstanding ones still works.
    if (this.consumer !== undefined) this.consumer.credit = Number.NEGATIVE_INFINITY;
  }

  async close(): Promise<void> {
    this.detach();
  }
}

/** A stored message as core reads it (a class: one is made per delivery). */
abstract class StoredDelivery extends BaseDelivery {
  constructor(m: StoredMessage, raw: unknown) {
    super(m.body, m.headers, raw);
    this.id = m.id;
    this.contentType = m.contentType;
    this.key = m.key;
    this.subject = m.subject;
    this.timestamp = m.timestamp;
  }
}

/** A delivery from a memory queue: the stored message with this queue's delivery state. */
class QueueDelivery extends StoredDelivery {
  constructor(
    private readonly queue: MemoryQueue,
    retryAddress: string,
    item: QueuedItem,
    private readonly tag: number,
  ) {
    super(item.message, item);
    this.priority = item.message.priority;
    this.attempt = item.attempt;
    this.redelivered = item.redelivered;
    this.retryAddress = retryAddress;
  }

  ack(): Promise<void> {
    this.queue.settle(this.tag);
    return CONFIRMED;
  }

  async requeue(): Promise<void> {
    this.queue.requeue(this.tag);
  }

  release(): void {
    this.queue.requeue(this.tag);
  }
}

class LogSubscription implements Attachable, Subscription {
  private reader: LogReader | undefined;
  private resumeAt: LogPosition[] | undefined;

  constructor(
    private readonly log: MemoryLog,
    private readonly spec: ReadSpec,
    private readonly deliver: Deliver,
  ) {}

  attach(): void {
    // After a reconnection, a reader without a group resumes where its handlers had got to.
    const from =
      this.resumeAt === undefined ? this.spec.from : { kind: 'positions' as const, positions: this.resumeAt };
    const reader = new LogReader(this.log, this.spec.group, from, this.spec.prefetch, (record, finish) => {
      void this.deliver(new LogDelivery(record, finish));
    });
    this.reader = reader;
    this.log.join(reader);
  }

  detach(): void {
    if (this.reader === undefined) return;
    this.resumeAt = this.reader.positions();
    this.reader.stop();
    this.log.leave(this.reader);
    this.reader = undefined;
  }

  async stop(): Promise<void> {
    this.reader?.stop();
  }

  async close(): Promise<void> {
    this.detach();
  }
}

/** A log entry as core reads it. */
class LogDelivery extends StoredDelivery {
  constructor(
    record: LogRecord,
    private readonly finish: () => void,
  ) {
    super(record.message, record);
    this.position = { partition: record.partition, offset: record.offset };
  }

  /** Done at once (the reader marks the entry finished): no promise per entry. */
  ack(): Promise<void> {
    this.finish();
    return CONFIRMED;
  }
}

/** A batch's outcome once `flow` (the queue's back-pressure) lets its senders go on. */
function answer(flow: Promise<void>, failed: Error[] | undefined): Promise<BatchOutcome> {
  if (failed === undefined) return flow as Promise<BatchOutcome>;
  return flow.then(() => failed);
}

function fresh(message: OutgoingMessage): QueuedItem {
  return { message: stored(message), attempt: 1, redelivered: false };
}
