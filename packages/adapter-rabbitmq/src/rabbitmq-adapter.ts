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
import { Appender } from './append.js';
import { type ConsumeContext, consumeQueue, type Source } from './consume.js';
import { asBuffer, publishOptions } from './message.js';
import { ADAPTER, type RabbitmqOptions, resolveSettings, type Settings } from './options.js';
import { Publisher } from './publisher.js';
import { readLog } from './reader.js';
import { Session } from './session.js';
import { Topology } from './topology.js';

/** What RabbitMQ does, and what Omnibus adds on top (README.md says why and what it costs). */
export function rabbitmqCapabilities(maxMessageBytes = 128 * 1024 * 1024): Capabilities {
  return {
    queue: 'native',
    topic: 'native',
    log: 'native',
    priority: 'native',
    replay: 'native',
    routing: 'native',
    // RabbitMQ's dead-lettering cannot add the reason and attempt headers: Omnibus publishes a confirmed copy, then acks.
    deadLetter: 'emulated',
    // No delayed delivery in RabbitMQ itself: per-delay TTL queues that dead-letter into the target.
    delay: 'emulated',
    headers: 'native',
    durableSubscriptions: 'native',
    // Streams keep no progress for AMQP 0-9-1 readers: Omnibus stores it, and locks one active reader per group.
    consumerGroups: 'emulated',
    ordering: 'key',
    // amqplib encodes the whole headers table into a 64 KiB buffer (RangeError beyond): one header
    // may take it all but the room the envelope headers and the table's framing need.
    limits: { maxPriority: 255, maxMessageBytes, maxHeaderBytes: 64 * 1024 - 1024 },
  };
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

class RabbitmqAdapter implements Adapter {
  readonly name = ADAPTER;
  readonly capabilities: Capabilities;
  private readonly ctx: ConsumeContext;
  private readonly appender: Appender;

  constructor(
    private readonly session: Session,
    private readonly settings: Settings,
  ) {
    this.capabilities = rabbitmqCapabilities(settings.maxMessageBytes);
    const topology = new Topology(session, settings);
    const publisher = new Publisher(session, () => topology.clear());
    session.onFresh(() => topology.clear());
    this.ctx = { session, publisher, topology };
    this.appender = new Appender(this.ctx, settings);
  }

  async send(queue: QueueSpec, message: OutgoingMessage): Promise<void> {
    const topology = this.ctx.topology;
    if (!topology.hasQueue(queue.name, queue.maxPriority))
      await topology.queue(queue.name, queue.maxPriority);
    await this.sendTo(queue.name, message);
  }

  /** Through the default exchange, which routes by queue name; a delay goes through the TTL stage first. */
  async sendTo(address: string, message: OutgoingMessage): Promise<void> {
    const delayMs = message.delayMs ?? 0;
    const exchange = delayMs > 0 ? await this.ctx.topology.delay(delayMs) : '';
    await this.ctx.publisher.publish(
      exchange,
      address,
      asBuffer(message.body),
      publishOptions(message),
      true,
    );
  }

  consume(queue: QueueSpec, spec: ConsumeSpec, deliver: Deliver): Promise<Subscription> {
    const topology = this.ctx.topology;
    const prepare = async () => {
      await topology.queue(queue.name, queue.maxPriority);
      return queue.name;
    };
    return consumeQueue(this.ctx, { label: `queue "${queue.name}"`, prepare }, spec, deliver);
  }

  async publish(topic: TopicSpec, message: OutgoingMessage): Promise<void> {
    if (!this.ctx.topology.hasTopic(topic.name)) await this.ctx.topology.topic(topic.name);
    // No subject: the empty routing key, which only `#` matches. Routed to no queue is fine.
    const options = publishOptions(message, true);
    await this.ctx.publisher.publish(
      topic.name,
      message.subject ?? '',
      asBuffer(message.body),
      options,
      false,
    );
  }

  subscribe(topic: TopicSpec, spec: SubscriptionSpec, deliver: Deliver): Promise<Subscription> {
    const topology = this.ctx.topology;
    const durable = spec.durable;
    const source: Source =
      durable === undefined
        ? {
            topic: topic.name,
            label: `topic "${topic.name}"`,
            // A server-named queue of this connection, deleted with its consumer.
            prepare: async (channel) => {
              await topology.topic(topic.name);
              const { queue } = await channel.assertQueue('', {
                exclusive: true,
                autoDelete: true,
                durable: false,
              });
              await channel.bindQueue(queue, topic.name, spec.pattern);
              return queue;
            },
          }
        : {
            topic: topic.name,
            label: `topic "${topic.name}" (durable subscription "${durable}")`,
            prepare: () => topology.durableSubscription(topic.name, durable, spec.pattern),
          };
    return consumeQueue(this.ctx, source, spec, deliver);
  }

  append(log: LogSpec, message: OutgoingMessage): Promise<LogPosition> {
    return this.appender.append(log.name, message);
  }

  read(log: LogSpec, spec: ReadSpec, deliver: Deliver): Promise<Subscription> {
    return readLog(this.ctx, this.settings, log, spec, deliver);
  }

  async close(): Promise<void> {
    this.appender.close();
    this.ctx.publisher.close();
    await this.session.close();
  }
}
