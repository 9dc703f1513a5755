/**
 * Consumers: competing consumption of a queue (a work queue, or a topic subscription's own queue),
 * and the channel-per-consumer attach that stream readers and the appender's read-back share. Each
 * consumer has its own channel (prefetch = Omnibus prefetch; a channel error stays there) and is a
 * core `Lifecycle`: it attaches again after a reconnection, and when its channel closes under it
 * (a consumer cancelled by the broker, its queue deleted).
 *
 * Settlement is on the channel the message came from, once. Core decides everything else; a retry
 * copy goes to `retryAddress`, the consumed queue's own name, which the default exchange routes to
 * that queue only (never to the other subscriptions of a topic).
 */
import { type Attached, CONFIRMED, type ConsumeSpec, type Deliver, type Subscription } from '@omnibus/core';
import type { Channel, ChannelModel, ConsumeMessage } from 'amqplib';
import { Acks } from './acks.js';
import { AmqpDelivery } from './message.js';
import type { Settings } from './options.js';
import type { Publisher } from './publisher.js';
import { brokerError, closeQuietly, openChannel, replyCode, type Session } from './session.js';
import type { Topology } from './topology.js';

export interface ConsumeContext {
  readonly settings: Settings;
  readonly session: Session;
  readonly publisher: Publisher;
  readonly topology: Topology;
}

/** Where a consumer's messages come from: declares what it needs and names the queue to consume. */
export interface Source {
  /** Declares the queue (and bindings) on a fresh connection; returns the queue name. */
  prepare(channel: Channel): Promise<string>;
  /** The topic whose routing keys are subjects, for topic subscriptions. */
  readonly topic?: string;
  /** What is consumed, for errors: `queue "orders"`, `topic "shop"`. */
  readonly label: string;
}

export async function consumeQueue(
  ctx: ConsumeContext,
  source: Source,
  spec: ConsumeSpec,
  deliver: Deliver,
): Promise<Subscription> {
  return ctx.session.subscribe((model, broken) =>
    attachConsumer(ctx, model, broken, {
      what: `consuming from ${source.label}`,
      prefetch: spec.prefetch,
      prepare: async (channel) => ({ queue: await source.prepare(channel) }),
      onMessage: (channel, msg, queue, acks) => {
        acks.delivered(msg.fields.deliveryTag);
        void deliver(new QueueDelivery(channel, msg, source.topic, queue, acks));
      },
    }),
  );
}

/**
 * A queue's (or a topic subscription's queue's) delivery: acked (coalesced with the channel's other
 * acks, see acks.ts), or put back with a NACK of its own.
 */
class QueueDelivery extends AmqpDelivery {
  constructor(
    channel: Channel,
    msg: ConsumeMessage,
    topic: string | undefined,
    readonly retryAddress: string,
    private readonly acks: Acks,
  ) {
    super(channel, msg, topic);
  }

  /** Done at once (amqplib writes the ack, or batches it with the next ones): `CONFIRMED`, so core settles it without a promise. */
  ack(): Promise<void> {
    this.acks.ack(this.raw.fields.deliveryTag);
    return CONFIRMED;
  }

  requeue(): Promise<void> {
    this.release();
    return CONFIRMED;
  }

  release(): void {
    this.acks.nack(this.raw.fields.deliveryTag, true);
  }
}

export interface ConsumerSetup {
  /** What is consumed, for errors. */
  readonly what: string;
  readonly prefetch: number;
  /** Declares what is needed; names the queue and the consume arguments. */
  prepare(channel: Channel): Promise<{ queue: string; arguments?: Record<string, unknown> }>;
  /** `acks`: the channel's coalesced acks, for deliveries that settle with ack and NACK. */
  onMessage(channel: Channel, msg: ConsumeMessage, queue: string, acks: Acks): void;
  /** The channel closed (with the connection, or alone). */
  onClose?(): void;
}

/** Opens a channel with one consumer on it; when the channel closes, `broken` says so to the lifecycle. */
export async function attachConsumer(
  ctx: ConsumeContext,
  model: ChannelModel,
  broken: (reason?: Error) => void,
  setup: ConsumerSetup,
): Promise<Attached> {
  const channel = await openChannel(model, setup.what);
  let failure: Error | undefined;
  let consumerTag: string | undefined;
  const acks = new Acks(channel);
  const attached: Attached = {
    stop: async () => {
      acks.flush();
      if (consumerTag !== undefined) await channel.cancel(consumerTag).catch(() => undefined);
    },
    // Acks still pending go out first; closing the channel gives unsettled deliveries back to the broker.
    close: () => {
      acks.flush();
      return channel.close().catch(() => undefined);
    },
  };
  channel.on('error', (error: Error) => {
    failure = error;
  });
  channel.on('close', () => {
    acks.close();
    setup.onClose?.();
    broken(failure);
  });
  try {
    await channel.prefetch(setup.prefetch);
    const { queue, arguments: args } = await setup.prepare(channel);
    const consumer = await channel.consume(
      queue,
      (msg) => {
        if (msg !== null) return setup.onMessage(channel, msg, queue, acks);
        // The broker cancelled the consumer (its queue was deleted): declare it again and start
        // over on a new channel.
        ctx.topology.clear();
        closeQuietly(channel);
      },
      { noAck: false, ...(args === undefined ? {} : { arguments: args }) },
    );
    consumerTag = consumer.consumerTag;
    return attached;
  } catch (error) {
    closeQuietly(channel);
    // Something declared earlier is gone: declare it again on the next attempt.
    if (replyCode(error) === 404) ctx.topology.clear();
    throw brokerError(setup.what, error);
  }
}
