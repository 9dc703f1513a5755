/**
 * Competing consumption of a queue: a work queue, or a topic subscription's own queue. Each
 * consumer has its own channel (prefetch = Omnibus prefetch; a channel error stays there) and comes
 * back by itself after a reconnection or a consumer cancelled by the broker.
 *
 * Settlement: ack and nack on the channel the message came from, once. A retry re-publishes a copy
 * with the new attempt header to this consumer's queue only (through the default exchange, or the
 * delay stage when it waits), and acks the original once the copy is confirmed; a dead letter goes
 * to the dead-letter queue the same way. Keyed messages are the exception: a copy would go behind
 * later messages of the same key, so they are retried in process (core holds them) to keep order.
 */
import type { ConsumeSpec, Deliver, Delivery, Headers, Subscription } from '@omnibus/core';
import type { Channel, ChannelModel, ConsumeMessage } from 'amqplib';
import { copyOptions, type Decoded, decode } from './message.js';
import type { Publisher } from './publisher.js';
import {
  type Attachable,
  AttachOnce,
  closeQuietly,
  openChannel,
  replyCode,
  type Session,
  subscribeError,
} from './session.js';
import type { Topology } from './topology.js';

export interface ConsumeContext {
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

export class QueueConsumer implements Attachable, Subscription {
  private readonly once = new AttachOnce();
  private channel: Channel | undefined;
  private consumerTag: string | undefined;
  private model: ChannelModel | undefined;
  private stopped = false;
  private closed = false;

  constructor(
    private readonly ctx: ConsumeContext,
    private readonly source: Source,
    private readonly spec: ConsumeSpec,
    private readonly deliver: Deliver,
  ) {}

  attach(model: ChannelModel): Promise<void> {
    return this.once.run(model, () => this.open(model));
  }

  private async open(model: ChannelModel): Promise<void> {
    if (this.stopped || this.model === model) return;
    const what = `consuming from ${this.source.label}`;
    const channel = await openChannel(model, what);
    let failure: Error | undefined;
    channel.on('error', (error: Error) => {
      failure = error;
    });
    channel.on('close', () => {
      if (this.channel !== channel) return;
      this.channel = undefined;
      this.model = undefined;
      // Closed while the connection stays up (a channel error, the queue deleted): come back.
      if (!this.stopped) this.ctx.session.reattach(this, failure);
    });
    try {
      await channel.prefetch(this.spec.prefetch);
      const queue = await this.source.prepare(channel);
      const topic = this.source.topic;
      const { consumerTag } = await channel.consume(
        queue,
        (msg) => {
          if (msg === null) {
            // The broker cancelled the consumer (its queue was deleted): declare it again and
            // start over on a new channel.
            this.ctx.topology.clear();
            closeQuietly(channel);
            return;
          }
          const decoded = decode(msg, topic);
          // A copy would queue up behind later messages of the same key: keyed messages retry in process.
          const Kind = decoded.key === undefined ? RepublishingDelivery : AmqpDelivery;
          void this.deliver(new Kind(this.ctx, channel, queue, msg, decoded));
        },
        { noAck: false },
      );
      if (this.stopped) {
        closeQuietly(channel);
        return;
      }
      this.channel = channel;
      this.consumerTag = consumerTag;
      this.model = model;
    } catch (error) {
      closeQuietly(channel);
      // Something declared earlier is gone: declare it again on the next attempt.
      if (replyCode(error) === 404) this.ctx.topology.clear();
      throw subscribeError(what, error);
    }
  }

  detach(): void {
    this.channel = undefined;
    this.consumerTag = undefined;
    this.model = undefined;
  }

  /** Stops new deliveries; acks and nacks of outstanding ones still work on the channel. */
  async stop(): Promise<void> {
    this.stopped = true;
    const { channel, consumerTag } = this;
    if (channel === undefined || consumerTag === undefined) return;
    await channel.cancel(consumerTag).catch(() => undefined);
  }

  /** Closing the channel gives unsettled deliveries back to the broker. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.stopped = true;
    this.ctx.session.remove(this);
    const channel = this.channel;
    this.detach();
    if (channel !== undefined) await channel.close().catch(() => undefined);
  }
}

class AmqpDelivery implements Delivery {
  readonly id: string;
  readonly body: Uint8Array;
  readonly headers: Headers;
  readonly key: string | undefined;
  readonly subject: string | undefined;
  readonly priority: number | undefined;
  readonly timestamp: number;
  readonly redelivered: boolean;

  constructor(
    protected readonly ctx: ConsumeContext,
    private readonly channel: Channel,
    protected readonly queue: string,
    readonly raw: ConsumeMessage,
    protected readonly decoded: Decoded,
  ) {
    this.id = decoded.id;
    this.body = decoded.body;
    this.headers = decoded.headers;
    this.key = decoded.key;
    this.subject = decoded.subject;
    this.priority = decoded.priority;
    this.timestamp = decoded.timestamp;
    this.redelivered = raw.fields.redelivered;
  }

  async ack(): Promise<void> {
    settle(() => this.channel.ack(this.raw));
  }

  async requeue(): Promise<void> {
    settle(() => this.channel.nack(this.raw, false, true));
  }

  release(): void {
    settle(() => this.channel.nack(this.raw, false, true));
  }

  async deadLetter(options: { readonly destination: string; readonly headers: Headers }): Promise<void> {
    await this.ctx.topology.queue(options.destination);
    const props = copyOptions(this.raw, this.decoded, options.headers);
    await this.ctx.publisher.publish('', options.destination, this.raw.content, props, true);
    await this.ack();
  }
}

/** An unkeyed delivery: retried natively, by a confirmed copy to its own queue. */
class RepublishingDelivery extends AmqpDelivery {
  async retry(options: { readonly delayMs: number; readonly headers: Headers }): Promise<void> {
    const props = copyOptions(this.raw, this.decoded, options.headers);
    let exchange = '';
    if (options.delayMs > 0) {
      const delay = this.ctx.topology.delay(options.delayMs);
      await delay.ready;
      exchange = delay.exchange;
    }
    // The default exchange (or the delay stage, which dead-letters to it) routes by queue name:
    // the copy goes to this consumer's queue only, never to the other subscriptions of a topic.
    await this.ctx.publisher.publish(exchange, this.queue, this.raw.content, props, true);
    await this.ack();
  }
}

/** Settles on the message's own channel; a closed channel means the broker redelivers it anyway. */
function settle(action: () => void): void {
  try {
    action();
  } catch {
    // The channel is gone with its deliveries: nothing to settle.
  }
}
