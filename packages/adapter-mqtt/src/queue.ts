/**
 * A queue consumer: one share-group member (its own connection, a persistent session so that a
 * broker restart or a network blip loses nothing), PUBACK after core settles each delivery. Core
 * runs handlers concurrently on it, keeping per-key order.
 *
 * Leaving for good ends the member's session, so the broker stops giving it a share (see
 * holder.ts). Before that, it leaves the share group and collects what the broker had already
 * queued for it; everything not handled is sent back to the queue (MQTT has no nack) and then
 * acknowledged, so nothing is lost.
 */
import {
  ConnectionError,
  type Deliver,
  type Delivery,
  HEADER,
  Pending,
  type Subscription,
} from '@omnibus/core';
import type { IPublishPacket, ISubscriptionMap } from 'mqtt';
import { type Ack, endClient, endSession, type Receiver, whileConnected } from './client.js';
import { MqttDelivery } from './delivery.js';
import type { HolderConsumer } from './holder.js';
import type { MqttAdapter } from './mqtt-adapter.js';
import { encode } from './wire.js';

export class QueueConsumer implements Subscription, HolderConsumer {
  private readonly member: Receiver;
  /** Live messages wait here until the holder's (older) ones have been handed over. */
  private held: (() => void)[] | undefined = [];
  private readonly givingBack = new Pending();
  private lostGiveBack = false;
  private closing: Promise<void> | undefined;
  subscribed = false;

  constructor(
    private readonly shared: MqttAdapter,
    readonly queue: string,
    prefetch: number,
    private readonly deliver: Deliver,
    /** `<base>:q:<queue>:<slot>`: stable, so a consumer that crashed finds its session again. */
    private readonly clientId: string,
    private readonly onClosed: () => void,
  ) {
    this.member = shared.receiver(
      { clientId, persistent: true, receiveMaximum: prefetch },
      `consumer of queue "${queue}"`,
      (packet, ack) => {
        const delivery = this.delivery(packet, ack);
        if (this.held !== undefined) this.held.push(() => void this.deliver(delivery));
        else void this.deliver(delivery);
      },
    );
  }

  async start(): Promise<void> {
    const { member, queue } = this;
    const filter = this.shared.shareFilter(queue);
    await member.connect(this.shared.where);
    try {
      await whileConnected(member.client, `joining "${filter}"`, () =>
        member.client.subscribeAsync(filter, { qos: 1 }),
      );
    } catch (error) {
      // Never got to consume: nothing to hand back; the session it created is ended.
      await endSession(member.client, this.shared.o, this.clientId).catch(() => undefined);
      throw error;
    }
    this.subscribed = true;
    member.client.on('close', () => {
      this.subscribed = false;
    });
    this.shared.holders.register(queue, this);
    member.client.on('connect', () => {
      if (this.closing !== undefined) return;
      // Subscribe again even when the session is present: Mosquitto 2.0.11 restores a persistent
      // session after a restart but not its shared subscriptions. Then look for a holder a sender
      // provisioned while this member was away.
      // (`resubscribe: true`, or mqtt.js skips a filter it believes subscribed.)
      whileConnected(member.client, `joining "${filter}" again`, () =>
        member.client.subscribeAsync({
          [filter]: { qos: 1 },
          resubscribe: true,
        } as unknown as ISubscriptionMap),
      )
        .then(() => {
          this.subscribed = true;
          return this.shared.holders.drain(queue);
        })
        .catch((error: unknown) => this.warn(`after reconnecting: ${String(error)}`));
    });
    // In the background: the holder's messages may need acknowledgements (handlers) before its
    // marker can arrive, so `consume` must not wait for them.
    this.shared.holders
      .drain(queue, (packet, ack) => void this.deliver(this.delivery(packet, ack)))
      .catch((error: unknown) => this.warn(`taking over the holder: ${String(error)}`))
      .finally(() => this.releaseHeld());
  }

  close(): Promise<void> {
    this.closing ??= this.leave().finally(this.onClosed);
    return this.closing;
  }

  private releaseHeld(): void {
    const held = this.held ?? [];
    this.held = undefined;
    for (const go of held) go();
  }

  private delivery(packet: IPublishPacket, ack: Ack): Delivery {
    return new QueueDelivery(this, this.shared.o.protocolVersion, packet, ack);
  }

  /**
   * MQTT has no nack, and an ended session's messages are not given to another share-group member:
   * what this consumer will not handle goes back to the queue as a copy, then the original is acked.
   */
  giveBack(delivery: Delivery, ack: Ack): void {
    const { headers, body, contentType } = delivery;
    const copy = { headers: { ...headers, [HEADER.redelivered]: '1' }, body, contentType };
    const giving = this.shared
      .sendToQueue(this.queue, encode(this.shared.o.protocolVersion, copy, true))
      .then(() => ack.ack())
      .catch((error: unknown) => {
        this.lostGiveBack = true;
        this.warn(`could not give a message back to the queue (kept unacknowledged): ${String(error)}`);
      });
    void this.givingBack.track(giving);
  }

  private async leave(): Promise<void> {
    const { member } = this;
    const { o, publisher } = this.shared;
    const last = await this.shared.holders.unregister(this.queue, this);
    this.subscribed = false;
    // 3.1.1 senders cannot tell that nobody consumes: leave a holder behind before going.
    if (last && o.protocolVersion === 4) {
      await this.shared.holders.provision(this.queue).catch((error: unknown) => this.warn(String(error)));
    }
    let drained = false;
    if (member.client.connected) {
      try {
        // Leave the share group, then take what the broker had already queued for this member:
        // core gives it back (release) as the consumer is closing.
        drained = await member.collect(
          this.shared.shareFilter(this.queue),
          this.shared.queueTopic(this.queue),
          publisher,
        );
      } catch (error) {
        this.warn(`leaving the share group: ${String(error)}`);
      }
    }
    this.releaseHeld();
    await this.givingBack.settled();
    await member.flushed();
    if (drained && !this.lostGiveBack) {
      await endSession(member.client, o, this.clientId);
    } else {
      await endClient(member.client);
      this.shared.context.reportError(
        new ConnectionError(
          `queue consumer "${this.clientId}" left its session on the broker with messages in it; they are delivered when a consumer with this client id returns`,
          { adapter: 'mqtt', retriable: false },
        ),
      );
    }
  }

  private warn(text: string): void {
    this.shared.context.logger.warn({ destination: this.queue }, `consumer of "${this.queue}": ${text}`);
  }
}

/** A queue's delivery: copies for retries go to the queue, and a release gives it back there. */
class QueueDelivery extends MqttDelivery {
  constructor(
    private readonly consumer: QueueConsumer,
    protocolVersion: 4 | 5,
    packet: IPublishPacket,
    ack: Ack,
  ) {
    super(protocolVersion, packet, ack);
    this.retryAddress = consumer.queue;
  }

  release(): void {
    this.consumer.giveBack(this, this.pubAck);
  }
}
