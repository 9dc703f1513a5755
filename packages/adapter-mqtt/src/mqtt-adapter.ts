/**
 * The MQTT adapter (`mqtt://`, `mqtts://`, `ws://`, `wss://`) on mqtt.js: topics natively, queues
 * on shared subscriptions, no logs. MQTT 5 by default, 3.1.1 with `?protocolVersion=4`.
 */
import {
  type Adapter,
  type AdapterContext,
  type AdapterFactory,
  type Capabilities,
  ConnectionError,
  type ConsumeSpec,
  type Deliver,
  declareCapabilities,
  type OutgoingMessage,
  PublishError,
  type QueueSpec,
  type Subscription,
  type SubscriptionSpec,
  type TopicSpec,
  UnsupportedCapabilityError,
  unsupported,
} from '@omnibus/core';
import type { IPublishPacket } from 'mqtt';
import { type Ack, type OnPublish, Receiver, type SessionSpec } from './client.js';
import { MqttDelivery } from './delivery.js';
import { Holders } from './holder.js';
import { type MqttOptions, type ResolvedOptions, resolveOptions } from './options.js';
import { Publisher } from './publisher.js';
import { QueueConsumer } from './queue.js';
import { TopicSubscriber } from './topic.js';
import { type Encoded, encodeMessage, queueTopicName, topicName } from './wire.js';

/** MQTT's largest packet (a 4-byte remaining length), less room for the topic and properties. */
const MAX_PACKET_BYTES = 268_435_455;
const PACKET_HEADROOM = 65_536 + 1024;
/** An MQTT 5 user property's name and value are each a string with a 16-bit length. */
const MAX_USER_PROPERTY_BYTES = 65_535;

/**
 * Capabilities for a protocol version (and, on 3.1.1, the envelope option). Each `emulated` or
 * `none` is explained in the README.
 */
export function mqttCapabilities(
  protocolVersion: 4 | 5,
  options: { readonly envelope?: boolean; readonly maximumPacketSize?: number } = {},
): Capabilities {
  const maxMessageBytes =
    Math.min(options.maximumPacketSize ?? MAX_PACKET_BYTES, MAX_PACKET_BYTES) - PACKET_HEADROOM;
  const mqtt5 = declareCapabilities({
    // Routing: `*` → `+` and a final `#` → `#`; only a `#` before the last word is filtered on the client.
    native: ['topic', 'routing', 'headers', 'durableSubscriptions'],
    emulated: {
      queue: 'shared subscriptions, and a holder session while no consumer exists (holder.ts)',
      deadLetter:
        'no nack and no dead-letter queue in MQTT: core copies the message to the dead-letter queue',
      redrive:
        'core consumes the dead-letter queue and publishes confirmed copies; without a count, a run ends at its own marker or when nothing arrives',
    },
    none: {
      log: 'MQTT keeps no log: retained messages are one last value per topic, not a history',
      replay: 'no log to replay',
      consumerGroups: 'no log to read in groups',
      priority: 'MQTT delivers in publish order, with no priority',
      delay: 'no delayed delivery in MQTT',
      depth: 'nothing in MQTT shows what a session holds',
      purge: 'nothing in MQTT shows or removes what a session holds',
      browse: 'nothing in MQTT shows what a session holds',
      redriveSubscription: 'a session has no address of its own: a copy would reach every subscriber',
      deleteSubscription:
        'nothing tells whether a client is connected without taking its session over (a live subscriber would be kicked)',
      resetGroup: 'no log',
      lag: 'no log',
    },
    // One consumer gets a queue's or subscription's messages in order; core keeps per-key order.
    ordering: 'key',
    limits: { maxMessageBytes, maxHeaderBytes: MAX_USER_PROPERTY_BYTES },
  });
  if (protocolVersion === 5) return mqtt5;
  // 3.1.1 has nowhere to put headers but an envelope in the payload, which only the packet size bounds.
  return { ...mqtt5, headers: options.envelope === true ? 'emulated' : 'none', limits: { maxMessageBytes } };
}

/** The MQTT adapter factory. */
export function mqtt(defaults: MqttOptions = {}): AdapterFactory {
  return {
    name: 'mqtt',
    schemes: ['mqtt', 'mqtts', 'ws', 'wss'],
    async create(target, context) {
      const o = resolveOptions(target.url, defaults, { ...target.options });
      const baseId = `${o.clientIdPrefix}${context.clientId}`;
      const publisher = new Publisher(o, baseId, context, target.url.redacted);
      await publisher.connect();
      return new MqttAdapter(o, context, target.url.redacted, publisher, baseId);
    },
  };
}

const routedOf = (result: { readonly routed: boolean }): boolean => result.routed;

export class MqttAdapter implements Adapter {
  readonly name = 'mqtt';
  // Operations: `none` in its capabilities (see mqttCapabilities).
  readonly depth = unsupported('mqtt', 'depth');
  readonly purge = unsupported('mqtt', 'purge');
  readonly browse = unsupported('mqtt', 'browse');
  readonly subscriptionAddress = unsupported('mqtt', 'redriveSubscription');
  readonly deleteSubscription = unsupported('mqtt', 'deleteSubscription');
  readonly resetGroup = unsupported('mqtt', 'resetGroup');
  readonly groupLag = unsupported('mqtt', 'lag');
  readonly capabilities: Capabilities;
  readonly append = unsupported('mqtt', 'log');
  readonly read = unsupported('mqtt', 'log');
  readonly holders: Holders;
  /** Queue → consumer slots in use: slot n is member client id `<base>:q:<queue>:<n>`. */
  private readonly slots = new Map<string, Set<number>>();
  private subscriptions = 0;

  constructor(
    readonly o: ResolvedOptions,
    readonly context: AdapterContext,
    /** The broker, for messages (redacted URL). */
    readonly where: string,
    readonly publisher: Publisher,
    /** `clientIdPrefix` + the bus's client id: the base of this bus's MQTT client ids. */
    readonly baseId: string,
  ) {
    this.capabilities = mqttCapabilities(o.protocolVersion, {
      envelope: o.envelope,
      ...(publisher.maximumPacketSize === undefined
        ? {}
        : { maximumPacketSize: publisher.maximumPacketSize }),
    });
    this.holders = new Holders(this);
    publisher.client.on('connect', () => this.holders.publisherReconnected());
  }

  /** `<queuePrefix>/<queue>`, checked as a topic name (remembered: it is made for every send). */
  queueTopic(queue: string): string {
    return queueTopicName(this.o.queuePrefix, queue);
  }

  /** `$share/<queue>/<queuePrefix>/<queue>`. */
  shareFilter(queue: string): string {
    return `$share/${queue}/${this.queueTopic(queue)}`;
  }

  send(queue: QueueSpec, message: OutgoingMessage): Promise<void> {
    return this.sendTo(queue.name, message);
  }

  /** A queue delivery's retry address is its queue: a copy published there reaches its share group only. */
  sendTo(queue: string, message: OutgoingMessage): Promise<void> {
    // Queue messages always carry the envelope on 3.1.1: queues live in Omnibus's own topic space.
    return this.sendToQueue(queue, encodeMessage(this.o.protocolVersion, message, true));
  }

  /**
   * Sends to a queue, provisioning its holder when nobody would get the message. Not an async
   * function: the common case (MQTT 5, someone took it) is one publish and its promise.
   */
  sendToQueue(queue: string, encoded: Encoded): Promise<void> {
    let topic: string;
    try {
      topic = this.queueTopic(queue);
    } catch (error) {
      return Promise.reject(error);
    }
    if (this.o.protocolVersion === 4) return this.sendToQueueAfterHolder(queue, topic, encoded);
    return this.publishToQueue(topic, encoded).then((routed) =>
      routed ? undefined : this.provisionAndResend(queue, encoded),
    );
  }

  /** MQTT 3.1.1: the holder is made sure of first (no reason code says nobody got a message). */
  private async sendToQueueAfterHolder(queue: string, topic: string, encoded: Encoded): Promise<void> {
    await this.holders.beforeSend(queue);
    if (!(await this.publishToQueue(topic, encoded))) await this.provisionAndResend(queue, encoded);
  }

  /** MQTT 5 told us nobody got it (reason 0x10): provision the holder and send again. */
  private async provisionAndResend(queue: string, encoded: Encoded): Promise<void> {
    await this.holders.provision(queue);
    if (!(await this.sendToConsumers(queue, encoded))) {
      throw new PublishError(`no subscriber took the message for queue "${queue}", not even its holder`, {
        adapter: 'mqtt',
      });
    }
  }

  /**
   * Sends to a queue's live consumers only, for a sweep that holds the holder itself (provisioning
   * would wait for it). Resolves false when MQTT 5 says nobody got it.
   */
  sendToConsumers(queue: string, encoded: Encoded): Promise<boolean> {
    return this.publishToQueue(this.queueTopic(queue), encoded);
  }

  private publishToQueue(topic: string, { payload, properties }: Encoded): Promise<boolean> {
    const qos = Math.max(this.o.qos, 1) as 1 | 2;
    return this.publisher.publish(topic, payload, qos, properties).then(routedOf);
  }

  async consume(queue: QueueSpec, spec: ConsumeSpec, deliver: Deliver): Promise<Subscription> {
    const slots = this.slots.get(queue.name) ?? new Set<number>();
    this.slots.set(queue.name, slots);
    let slot = 0;
    while (slots.has(slot)) slot++;
    slots.add(slot);
    const free = () => void slots.delete(slot);
    const clientId = `${this.baseId}:q:${queue.name}:${slot}`;
    const consumer = new QueueConsumer(this, queue.name, spec.prefetch, deliver, clientId, free);
    await consumer.start().catch((error: unknown) => {
      free();
      throw error;
    });
    return consumer;
  }

  /** Not an async function: one publish and its promise (what it resolves with, core ignores). */
  publish(topic: TopicSpec, message: OutgoingMessage): Promise<void> {
    const { protocolVersion, envelope, qos } = this.o;
    try {
      if (message.key !== undefined && protocolVersion === 4 && !envelope) {
        // Dropping it would silently lose per-key ordering on the subscribers' side.
        throw new UnsupportedCapabilityError(
          'a message key on an MQTT 3.1.1 topic has nowhere to travel: publish without a key, use MQTT 5, or set envelope=true',
          [{ feature: 'headers', required: 'emulated', actual: 'none' }],
          { adapter: 'mqtt' },
        );
      }
      const name = topicName(topic.name, message.subject);
      const { payload, properties } = encodeMessage(protocolVersion, message, envelope, true);
      return this.publisher.publish(name, payload, qos, properties) as Promise<unknown> as Promise<void>;
    } catch (error) {
      return Promise.reject(error);
    }
  }

  async subscribe(topic: TopicSpec, spec: SubscriptionSpec, deliver: Deliver): Promise<Subscription> {
    const clientId =
      spec.durable === undefined
        ? `${this.baseId}:t:${this.subscriptions++}`
        : `${this.o.clientIdPrefix}omnibus-durable:${topic.name}:${spec.durable}`;
    const subscriber = new TopicSubscriber(this, topic.name, spec, deliver, clientId);
    await subscriber.start();
    return subscriber;
  }

  /** A consuming connection; `what` names it in warnings and in the report of a session taken over. */
  receiver(spec: SessionSpec, what: string, onPublish: OnPublish): Receiver {
    const { context } = this;
    return new Receiver(
      this.o,
      spec,
      onPublish,
      (e) => context.logger.warn({ error: e.message }, `${what}: ${e.message}`),
      (why) =>
        context.reportError(
          new ConnectionError(
            `${what} stopped: its session "${spec.clientId}" was taken over by another connection (${why}); is another process using client id "${context.clientId}"?`,
            { adapter: 'mqtt', retriable: false },
          ),
        ),
    );
  }

  /** A received PUBLISH for core; its PUBACK is sent when core acks it. */
  delivery(packet: IPublishPacket, ack: Ack): MqttDelivery {
    return new MqttDelivery(this.o.protocolVersion, packet, ack);
  }

  async close(): Promise<void> {
    this.holders.close();
    await this.publisher.close();
  }
}
