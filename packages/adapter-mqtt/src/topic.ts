/**
 * A topic subscription: its own connection, subscribed to the MQTT filter of its pattern, PUBACK
 * after core settles each delivery. A plain subscription has a clean session: what is published
 * while it is away is not kept. A durable one is a persistent session whose client id comes from
 * the topic and the durable name, so whoever subscribes with that name next (this process or
 * another) gets what was published meanwhile; MQTT allows one connection per session, so a second
 * live subscriber with the same name would take the session over — that is refused in-process and
 * reported across processes.
 */
import { type Deliver, type Subscription, type SubscriptionSpec, ValidationError } from '@omnibus/core';
import { endClient, type Receiver, whileConnected } from './client.js';
import type { MqttAdapter } from './mqtt-adapter.js';
import { subjectOf, topicFilter } from './wire.js';

/** Durable sessions connected from this process: one connection per session. */
const activeDurables = new Set<string>();

export class TopicSubscriber implements Subscription {
  private receiver: Receiver | undefined;
  private closed = false;

  constructor(
    private readonly shared: MqttAdapter,
    private readonly topic: string,
    private readonly spec: SubscriptionSpec,
    private readonly deliver: Deliver,
    private readonly clientId: string,
  ) {}

  async start(): Promise<void> {
    const { o, where } = this.shared;
    const { durable, pattern, prefetch } = this.spec;
    const { filter, matches } = topicFilter(this.topic, pattern);
    if (durable !== undefined) {
      if (activeDurables.has(this.clientId)) {
        throw new ValidationError(
          `durable subscription "${durable}" of topic "${this.topic}" is already open in this process; MQTT allows one connection per session`,
          [],
          { adapter: 'mqtt' },
        );
      }
      activeDurables.add(this.clientId);
    }
    const receiver = this.shared.receiver(
      { clientId: this.clientId, persistent: durable !== undefined, receiveMaximum: prefetch },
      `subscription "${durable ?? pattern}" on "${this.topic}"`,
      (packet, ack) => {
        const subject = subjectOf(this.topic, packet.topic);
        // A pattern MQTT cannot express is filtered here; what does not match is acknowledged unseen.
        if (matches !== undefined && !matches(subject)) void ack.ack();
        // No retry address: a copy published to the topic would reach every subscriber.
        else {
          const delivery = this.shared.delivery(packet, ack);
          delivery.subject = subject;
          void this.deliver(delivery);
        }
      },
    );
    this.receiver = receiver;
    try {
      await receiver.connect(where);
      await whileConnected(receiver.client, `subscribing to "${filter}"`, () =>
        receiver.client.subscribeAsync(filter, { qos: Math.min(o.qos, 1) as 0 | 1 }),
      );
    } catch (error) {
      await this.close();
      throw error;
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const receiver = this.receiver;
    if (receiver !== undefined) {
      await receiver.flushed();
      // A durable session stays, with what was not acknowledged; a clean one ends with the connection.
      await endClient(receiver.client);
    }
    if (this.spec.durable !== undefined) activeDurables.delete(this.clientId);
  }
}
