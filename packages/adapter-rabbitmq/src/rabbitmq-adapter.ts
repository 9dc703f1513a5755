/**
 * The RabbitMQ adapter (`amqp://`, `amqps://`) over amqplib: a queue is a durable queue, a topic a
 * topic exchange (subject = routing key), a log a stream queue. See README.md for what is emulated
 * and what it costs.
 */

import type {
  Adapter,
  AdapterFactory,
  Capabilities,
  ConsumeSpec,
  Deliver,
  LogPosition,
  LogSpec,
  OutgoingMessage,
  QueueSpec,
  ReadSpec,
  Subscription,
  SubscriptionSpec,
  TopicSpec,
} from '@omnibus/core';
import { declareCapabilities, ReadBack, unsupported } from '@omnibus/core';
import { Admin } from './admin.js';
import { type ConsumeContext, consumeQueue, type Source } from './consume.js';
import { asBuffer, publishOptions } from './message.js';
import { ADAPTER, type RabbitmqOptions, resolveSettings, type Settings } from './options.js';
import { Publisher } from './publisher.js';
import { readLog } from './reader.js';
import { Session } from './session.js';
import { Topology } from './topology.js';

/** What RabbitMQ does, and what Omnibus adds on top (README.md says why and what it costs). */
export function rabbitmqCapabilities(maxMessageBytes = 128 * 1024 * 1024): Capabilities {
  return declareCapabilities({
    native: [
      'queue',
      'topic',
      'log',
      'priority',
      'replay',
      'routing',
      'headers',
      'durableSubscriptions',
      'depth',
      'purge',
      'deleteSubscription',
    ],
    emulated: {
      deadLetter:
        "RabbitMQ's dead-lettering cannot add the reason and attempt headers: a confirmed copy, then an ack",
      delay: 'no delayed delivery in RabbitMQ itself: per-delay TTL queues that dead-letter into the target',
      consumerGroups:
        'streams keep no progress for AMQP 0-9-1 readers: Omnibus stores it, one active reader per group',
      redrive:
        'no redrive primitive (a shovel cannot strip headers): core consumes the dead-letter queue and sends confirmed copies',
      redriveSubscription:
        'a durable subscription is a queue: core sends the copies to it through the default exchange, so it alone gets them',
    },
    none: {
      browse:
        'basic.get then requeue sets the redelivered flag (and counts a delivery on quorum queues): no look is free',
      resetGroup:
        "resetting to 'latest' (or past the last entry) needs a stream's end offset, which AMQP 0-9-1 never tells",
      lag: "a group's lag needs the stream's end offset, which AMQP 0-9-1 never tells",
    },
    ordering: 'key',
    // amqplib encodes the whole headers table into a 64 KiB buffer (RangeError beyond): one header
    // may take it all but the room the envelope headers and the table's framing need.
    limits: { maxPriority: 255, maxMessageBytes, maxHeaderBytes: 64 * 1024 - 1024 },
  });
}

/** The RabbitMQ adapter factory. Options here are defaults; the URL query and object config override them. */
export function rabbitmq(defaults: RabbitmqOptions = {}): AdapterFactory {
  return {
    name: ADAPTER,
    schemes: ['amqp', 'amqps'],
    async create(target, context) {
      const settings = resolveSettings(target.url, { ...defaults, ...target.options });
      const session = new Session(settings, context);
      await session.open();
      return new RabbitmqAdapter(session, settings);
    },
  };
}

class RabbitmqAdapter implements Adapter, ConsumeContext {
  readonly name = ADAPTER;
  // Operations (admin.ts); `none` in ADMIN_CAPABILITIES where RabbitMQ cannot.
  private readonly admin = new Admin(this);
  readonly depth = (queue: QueueSpec) => this.admin.depth(queue);
  readonly purge = (queue: QueueSpec) => this.admin.purge(queue);
  readonly browse = unsupported('rabbitmq', 'browse');
  readonly subscriptionAddress = (topic: TopicSpec, durable: string) =>
    this.admin.subscriptionAddress(topic, durable);
  readonly deleteSubscription = (topic: TopicSpec, durable: string) =>
    this.admin.deleteSubscription(topic, durable);
  readonly resetGroup = unsupported('rabbitmq', 'resetGroup');
  readonly groupLag = unsupported('rabbitmq', 'lag');
  readonly capabilities: Capabilities;
  readonly topology: Topology;
  readonly publisher: Publisher;
  /**
   * RabbitMQ confirms a publish without saying where it landed (AMQP 0-9-1 confirms carry delivery
   * tags, the stream protocol's publishing ids: neither an offset), so an append's offset is read
   * back by a stream reader of the log.
   */
  private readonly readBack = new ReadBack({
    adapter: ADAPTER,
    // It finishes entries in order, so it grants credit a hundred entries at a time.
    read: (log, deliver) =>
      readLog(this, { name: log, partitions: 1 }, { prefetch: 1000, from: { kind: 'latest' } }, deliver, 100),
  });

  constructor(
    readonly session: Session,
    readonly settings: Settings,
  ) {
    this.capabilities = rabbitmqCapabilities(settings.maxMessageBytes);
    this.topology = new Topology(session, settings);
    this.publisher = new Publisher(session, () => this.topology.clear());
    session.onFresh = () => this.topology.clear();
  }

  send(queue: QueueSpec, message: OutgoingMessage): Promise<void> {
    // The common case, the queue declared and no delay, goes straight to the publisher.
    if (this.topology.hasQueue(queue.name, queue.maxPriority) && (message.delayMs ?? 0) === 0) {
      return this.publisher.publish('', queue.name, asBuffer(message.body), publishOptions(message));
    }
    return this.declareAndSend(queue, message);
  }

  private async declareAndSend(queue: QueueSpec, message: OutgoingMessage): Promise<void> {
    if (!this.topology.hasQueue(queue.name, queue.maxPriority)) {
      await this.topology.queue(queue.name, queue.maxPriority);
    }
    await this.sendTo(queue.name, message);
  }

  /** Through the default exchange, which routes by queue name; a delay goes through the TTL stage first. */
  async sendTo(address: string, message: OutgoingMessage): Promise<void> {
    const delayMs = message.delayMs ?? 0;
    const exchange = delayMs > 0 ? await this.topology.delay(delayMs) : '';
    await this.publisher.publish(exchange, address, asBuffer(message.body), publishOptions(message));
  }

  consume(queue: QueueSpec, spec: ConsumeSpec, deliver: Deliver): Promise<Subscription> {
    const prepare = async () => {
      await this.topology.queue(queue.name, queue.maxPriority);
      return queue.name;
    };
    return consumeQueue(this, { label: `queue "${queue.name}"`, prepare }, spec, deliver);
  }

  publish(topic: TopicSpec, message: OutgoingMessage): Promise<void> {
    if (!this.topology.hasTopic(topic.name)) return this.declareAndPublish(topic, message);
    // No subject: the empty routing key, which only `#` matches. Routed to no queue is fine.
    return this.publisher.publish(
      topic.name,
      message.subject ?? '',
      asBuffer(message.body),
      publishOptions(message, true),
    );
  }

  private async declareAndPublish(topic: TopicSpec, message: OutgoingMessage): Promise<void> {
    await this.topology.topic(topic.name);
    await this.publish(topic, message);
  }

  subscribe(topic: TopicSpec, spec: SubscriptionSpec, deliver: Deliver): Promise<Subscription> {
    const { durable, pattern } = spec;
    const source: Source = {
      topic: topic.name,
      label: `topic "${topic.name}"${durable === undefined ? '' : ` (durable subscription "${durable}")`}`,
      prepare: (channel) =>
        durable === undefined
          ? this.topology.exclusiveSubscription(channel, topic.name, pattern)
          : this.topology.durableSubscription(topic.name, durable, pattern),
    };
    return consumeQueue(this, source, spec, deliver);
  }

  /** `position: false`: resolves on the confirm, without the read-back (`AppendOptions.position`). */
  async append(log: LogSpec, message: OutgoingMessage, position = true): Promise<LogPosition | undefined> {
    if (!this.topology.hasStream(log.name)) await this.topology.stream(log.name);
    const body = asBuffer(message.body);
    if (!position) {
      await this.publisher.publish('', log.name, body, publishOptions(message));
      return undefined;
    }
    return this.readBack.append(log.name, (extra) =>
      this.publisher.publish('', log.name, body, publishOptions(message, false, extra)),
    );
  }

  read(log: LogSpec, spec: ReadSpec, deliver: Deliver): Promise<Subscription> {
    return readLog(this, log, spec, deliver);
  }

  async close(): Promise<void> {
    this.readBack.close();
    this.publisher.close();
    await this.session.close();
  }
}
