/**
 * A topic subscription: its own connection, subscribed to the MQTT filter of its pattern, PUBACK
 * after core settles each delivery. A plain subscription has a clean session: what is published
 * while it is away is not kept. A durable one is a persistent session whose client id comes from
 * the topic and the durable name, so whoever subscribes with that name next (this process or
 * another) gets what was published meanwhile; MQTT allows one connection per session, so a second
 * live subscriber with the same name would take the session over — that is refused in-process and
 * reported across processes.
 */
import {
  ConnectionError,
  type Deliver,
  type Delivery,
  type Subscription,
  ValidationError,
} from '@omnibus/core';
import type { IPublishPacket } from 'mqtt';
import { type Ack, endClient, Receiver } from './client.js';
import type { MqttShared } from './shared.js';
import { subjectOf, topicFilter } from './wire.js';

/** Durable sessions connected from this process: one connection per session. */
const activeDurables = new Set<string>();

export class TopicSubscriber implements Subscription {
  private receiver: Receiver | undefined;
  private closed = false;

  constructor(
    private readonly shared: MqttShared,
    private readonly topic: string,
    private readonly pattern: string,
    private readonly durable: string | undefined,
    private readonly prefetch: number,
    private readonly deliver: Deliver,
    private readonly clientId: string,
  ) {}

  static durableClientId(shared: MqttShared, topic: string, durable: string): string {
    return `${shared.o.clientIdPrefix}omnibus-durable:${topic}:${durable}`;
  }

  async start(): Promise<void> {
    const { o, where } = this.shared;
    const { filter, matches } = topicFilter(this.topic, this.pattern);
    if (this.durable !== undefined) {
      if (activeDurables.has(this.clientId)) {
        throw new ValidationError(
          `durable subscription "${this.durable}" of topic "${this.topic}" is already open in this process; MQTT allows one connection per session`,
          [],
          { adapter: 'mqtt' },
        );
      }
      activeDurables.add(this.clientId);
    }
    const receiver = new Receiver(
      o,
      { clientId: this.clientId, persistent: this.durable !== undefined, receiveMaximum: this.prefetch },
      (packet, ack) => {
        const subject = subjectOf(this.topic, packet.topic);
        // A pattern MQTT cannot express is filtered here; what does not match is acknowledged unseen.
        if (matches !== undefined && !matches(subject)) void ack.ack();
        else void this.deliver(this.delivery(packet, subject, ack));
      },
      (error) => this.warn(error.message),
    );
    this.receiver = receiver;
    receiver.onTakenOver((why) =>
      this.shared.context.reportError(
        new ConnectionError(
          `subscription "${this.durable ?? this.pattern}" on "${this.topic}" stopped: its session was taken over by another connection with client id "${this.clientId}" (${why})`,
          { adapter: 'mqtt', retriable: false },
        ),
      ),
    );
    try {
      await receiver.connect(where);
      await receiver.client.subscribeAsync(filter, { qos: Math.min(o.qos, 1) as 0 | 1 });
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
    if (this.durable !== undefined) activeDurables.delete(this.clientId);
  }

  private delivery(packet: IPublishPacket, subject: string | undefined, ack: Ack): Delivery {
    const { meta, body } = this.shared.decode(packet);
    return {
      id: meta.id,
      body,
      headers: meta.headers,
      key: meta.key,
      subject,
      timestamp: meta.timestamp,
      redelivered: packet.dup || meta.redelivered === true,
      raw: packet,
      ack: () => ack.ack(),
    };
  }

  private warn(text: string): void {
    this.shared.context.logger.warn(`[omnibus] [mqtt] subscription on "${this.topic}": ${text}`);
  }
}
