/**
 * The MQTT adapter (`mqtt://`, `mqtts://`, `ws://`, `wss://`) on mqtt.js: topics natively, queues
 * on shared subscriptions, no logs. MQTT 5 by default, 3.1.1 with `?protocolVersion=4`.
 */
import type {
  Adapter,
  AdapterContext,
  AdapterFactory,
  Capabilities,
  ConsumeSpec,
  Deliver,
  OutgoingMessage,
  QueueSpec,
  Subscription,
  SubscriptionSpec,
  TopicSpec,
} from '@omnibus/core';
import { PublishError, UnsupportedCapabilityError } from '@omnibus/core';
import type { IPublishPacket } from 'mqtt';
import { Holders } from './holder.js';
import { type MqttOptions, type ResolvedOptions, resolveOptions } from './options.js';
import { Publisher } from './publisher.js';
import { QueueConsumer } from './queue.js';
import type { MqttShared } from './shared.js';
import { TopicSubscriber } from './topic.js';
import {
  assertTopicName,
  envelope,
  fromProperties,
  type Meta,
  toProperties,
  topicName,
  unwrap,
} from './wire.js';

/** MQTT's largest packet (a 4-byte remaining length), less room for the topic and properties. */
const MAX_PACKET_BYTES = 268_435_455;
const PACKET_HEADROOM = 65_536 + 1024;

/**
 * Capabilities for a protocol version (and, on 3.1.1, the envelope option). Each `emulated` or
 * `none` is explained in the README.
 */
export function mqttCapabilities(
  protocolVersion: 4 | 5,
  options: { readonly envelope?: boolean; readonly maximumPacketSize?: number } = {},
): Capabilities {
  return {
    // Shared subscriptions + a holder session while no consumer exists (holder.ts).
    queue: 'emulated',
    topic: 'native',
    // MQTT keeps no log: retained messages are one last value per topic, not a history.
    log: 'none',
    priority: 'none',
    replay: 'none',
    // `*` → `+` and a final `#` → `#`; only a `#` before the last word is filtered on the client.
    routing: 'native',
    // No nack and no dead-letter queue in MQTT: core copies the message to the dead-letter queue.
    deadLetter: 'emulated',
    delay: 'none',
    // MQTT 5 user properties; 3.1.1 has nowhere to put headers but an envelope in the payload.
    headers: protocolVersion === 5 ? 'native' : options.envelope === true ? 'emulated' : 'none',
    durableSubscriptions: 'native',
    consumerGroups: 'none',
    // One consumer gets a queue's or subscription's messages in order; core keeps per-key order.
    ordering: 'key',
    limits: {
      maxMessageBytes:
        Math.min(options.maximumPacketSize ?? MAX_PACKET_BYTES, MAX_PACKET_BYTES) - PACKET_HEADROOM,
    },
  };
}

/** The MQTT adapter factory. */
export function mqtt(defaults: MqttOptions = {}): AdapterFactory {
  return {
    name: 'mqtt',
    schemes: ['mqtt', 'mqtts', 'ws', 'wss'],
    async create(target, context) {
      const o = resolveOptions(target.url, defaults, { ...target.options });
      const adapter = new MqttAdapter(o, context, target.url.redacted);
      await adapter.connect();
      return adapter;
    },
  };
}

class MqttAdapter implements Adapter, MqttShared {
  readonly name = 'mqtt';
  capabilities: Capabilities;
  readonly publisher: Publisher;
  readonly baseId: string;
  private readonly holders: Holders;
  /** Queue → consumer slots in use: slot n is member client id `<base>:q:<queue>:<n>`. */
  private readonly slots = new Map<string, Set<number>>();
  private subscriptions = 0;

  constructor(
    readonly o: ResolvedOptions,
    readonly context: AdapterContext,
    readonly where: string,
  ) {
    this.baseId = `${o.clientIdPrefix}${context.clientId}`;
    this.publisher = new Publisher(o, this.baseId, context, where);
    this.holders = new Holders(this);
    this.capabilities = mqttCapabilities(o.protocolVersion, { envelope: o.envelope });
  }

  async connect(): Promise<void> {
    await this.publisher.connect();
    this.publisher.client.on('connect', () => this.holders.publisherReconnected());
    this.capabilities = mqttCapabilities(this.o.protocolVersion, {
      envelope: this.o.envelope,
      ...(this.publisher.maximumPacketSize === undefined
        ? {}
        : { maximumPacketSize: this.publisher.maximumPacketSize }),
    });
  }

  queueTopic(queue: string): string {
    return `${this.o.queuePrefix}/${queue}`;
  }

  shareFilter(queue: string): string {
    return `$share/${queue}/${this.queueTopic(queue)}`;
  }

  async send(queue: QueueSpec, message: OutgoingMessage): Promise<void> {
    await this.sendToQueue(queue.name, meta(message), message.body);
  }

  async sendToQueue(queue: string, m: Meta, body: Uint8Array): Promise<void> {
    const topic = this.queueTopic(queue);
    assertTopicName(topic);
    if (this.o.protocolVersion === 4) await this.holders.beforeSend(queue);
    const qos = Math.max(this.o.qos, 1) as 1 | 2;
    const first = await this.publishEncoded(topic, m, body, qos, true);
    if (first.routed) return;
    // MQTT 5 told us nobody got it (reason 0x10): provision the holder and send again.
    await this.holders.provision(queue);
    const again = await this.publishEncoded(topic, m, body, qos, true);
    if (!again.routed) {
      throw new PublishError(`no subscriber took the message for queue "${queue}", not even its holder`, {
        adapter: 'mqtt',
      });
    }
  }

  async sendToConsumers(queue: string, m: Meta, body: Uint8Array): Promise<boolean> {
    const { routed } = await this.publishEncoded(
      this.queueTopic(queue),
      m,
      body,
      Math.max(this.o.qos, 1) as 1 | 2,
      true,
    );
    return routed;
  }

  async consume(queue: QueueSpec, spec: ConsumeSpec, deliver: Deliver): Promise<Subscription> {
    const slots = this.slots.get(queue.name) ?? new Set<number>();
    this.slots.set(queue.name, slots);
    let slot = 0;
    while (slots.has(slot)) slot++;
    slots.add(slot);
    const consumer = new QueueConsumer(this, this.holders, queue.name, spec.prefetch, deliver, slot);
    const free = () => slots.delete(slot);
    try {
      await consumer.start();
    } catch (error) {
      await consumer.close().catch(() => undefined);
      free();
      throw error;
    }
    return {
      close: async () => {
        await consumer.close();
        free();
      },
    };
  }

  async publish(topic: TopicSpec, message: OutgoingMessage): Promise<void> {
    if (message.key !== undefined && this.o.protocolVersion === 4 && !this.o.envelope) {
      // Dropping it would silently lose per-key ordering on the subscribers' side.
      throw new UnsupportedCapabilityError(
        'a message key on an MQTT 3.1.1 topic has nowhere to travel: publish without a key, use MQTT 5, or set envelope=true',
        [{ feature: 'headers', required: 'emulated', actual: 'none' }],
        { adapter: 'mqtt' },
      );
    }
    const name = topicName(topic.name, message.subject);
    await this.publishEncoded(name, meta(message), message.body, this.o.qos, this.o.envelope);
  }

  async subscribe(topic: TopicSpec, spec: SubscriptionSpec, deliver: Deliver): Promise<Subscription> {
    const clientId =
      spec.durable === undefined
        ? `${this.baseId}:t:${this.subscriptions++}`
        : TopicSubscriber.durableClientId(this, topic.name, spec.durable);
    const subscriber = new TopicSubscriber(
      this,
      topic.name,
      spec.pattern,
      spec.durable,
      spec.prefetch,
      deliver,
      clientId,
    );
    await subscriber.start();
    return subscriber;
  }

  decode(packet: IPublishPacket): { meta: Meta; body: Uint8Array } {
    if (this.o.protocolVersion === 5)
      return { meta: fromProperties(packet.properties), body: packet.payload as Buffer };
    return unwrap(packet.payload as Buffer);
  }

  async close(): Promise<void> {
    this.holders.close();
    await this.publisher.close();
  }

  private publishEncoded(
    topic: string,
    m: Meta,
    body: Uint8Array,
    qos: 0 | 1 | 2,
    wrap: boolean,
  ): Promise<{ routed: boolean }> {
    if (this.o.protocolVersion === 5) return this.publisher.publish(topic, body, qos, toProperties(m));
    return this.publisher.publish(topic, wrap ? envelope(m, body) : body, qos);
  }
}

function meta(message: OutgoingMessage): Meta {
  return {
    id: message.id,
    timestamp: message.timestamp,
    headers: message.headers,
    contentType: message.contentType,
    key: message.key,
    subject: message.subject,
  };
}
