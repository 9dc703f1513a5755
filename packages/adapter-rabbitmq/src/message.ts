/**
 * How an Omnibus message travels as an AMQP 0-9-1 message: id → `message-id`, content type →
 * `content-type`, priority → `priority`, and on a topic publish the subject → the routing key. The
 * rest of core's envelope (key, the millisecond timestamp — AMQP's `timestamp` is in seconds) and
 * the application's headers go in the headers table, as strings. On receipt core gets the whole
 * table back as text, without what the broker adds for itself.
 */
import type { Delivery, Headers, OutgoingMessage, ToHeadersOptions } from '@omnibus/core';
import { toHeaders } from '@omnibus/core';
import type { Options as AmqpOptions, Channel, ConsumeMessage } from 'amqplib';

const NATIVE = { id: true, contentType: true } as const;
/** Made once: `toHeaders` options for a queue (or log) publish, and for a topic publish (the subject is the routing key). */
const NATIVE_ON_TOPIC = { ...NATIVE, subject: true } as const;
const ON_QUEUE: ToHeadersOptions = { native: NATIVE };
const ON_TOPIC: ToHeadersOptions = { native: NATIVE_ON_TOPIC };

/** Headers the broker adds (dead-lettering, streams, quorum queues, sender-selected routing). */
const BROKER_HEADERS = new Set(['x-death', 'x-stream-offset', 'x-delivery-count', 'CC', 'BCC']);

/**
 * Publish options for `message`, built once per message and handed to amqplib as they are.
 * `onTopic`: the routing key carries the subject, and an unroutable message is fine (otherwise it
 * is `mandatory`: the broker returns it, and the send fails). `extra`: more envelope headers (a log
 * entry's append reference).
 */
export function publishOptions(
  message: OutgoingMessage,
  onTopic = false,
  extra?: Readonly<Headers>,
): AmqpOptions.Publish {
  const headerOptions = onTopic ? ON_TOPIC : ON_QUEUE;
  const options: AmqpOptions.Publish = {
    messageId: message.id,
    contentType: message.contentType,
    timestamp: Math.floor(message.timestamp / 1000),
    persistent: true,
    mandatory: !onTopic,
    // Fields written one by one: a spread followed by another field costs microseconds on node 20.
    headers: toHeaders(
      message,
      extra === undefined ? headerOptions : { native: onTopic ? NATIVE_ON_TOPIC : NATIVE, extra },
    ),
  };
  if (message.priority !== undefined) options.priority = message.priority;
  return options;
}

/**
 * A delivered message as core reads it. `topic`: the exchange whose routing keys are subjects (a
 * topic subscription's); a message that reached the queue another way (a retry copy through the
 * default exchange) carries its subject in the envelope. A class, not a literal with closures: one
 * is made for every message. Subclasses settle it on the channel it came from.
 */
export abstract class AmqpDelivery implements Delivery {
  readonly body: Buffer;
  readonly headers: Headers;
  id: string | undefined;
  readonly contentType: string | undefined;
  readonly subject: string | undefined;
  readonly priority: number | undefined;
  readonly timestamp: number | undefined;
  readonly redelivered: boolean;

  constructor(
    readonly channel: Channel,
    readonly raw: ConsumeMessage,
    topic?: string,
  ) {
    const p = raw.properties;
    const table = (p.headers ?? {}) as Record<string, unknown>;
    const headers: Record<string, string> = {};
    for (const name in table) {
      if (BROKER_HEADERS.has(name) || name.startsWith('x-first-death-') || name.startsWith('x-last-death-'))
        continue;
      const text = headerText(table[name]);
      if (text !== undefined) headers[name] = text;
    }
    const routingKey = raw.fields.routingKey;
    this.body = raw.content;
    this.headers = headers;
    // No message-id (another producer's message): core gives it one that its copies keep.
    this.id = typeof p.messageId === 'string' && p.messageId !== '' ? p.messageId : undefined;
    this.contentType = typeof p.contentType === 'string' ? p.contentType : undefined;
    this.subject =
      topic !== undefined && raw.fields.exchange === topic && routingKey !== '' ? routingKey : undefined;
    this.priority = typeof p.priority === 'number' ? p.priority : undefined;
    this.timestamp = typeof p.timestamp === 'number' ? p.timestamp * 1000 : undefined;
    this.redelivered = raw.fields.redelivered;
  }

  abstract ack(): Promise<void>;
}

/** Settles on the message's own channel; a closed channel means the broker redelivers it anyway. */
export function quietly(action: () => void): void {
  try {
    action();
  } catch {
    // The channel is gone with its deliveries: nothing to settle.
  }
}

/** A header value as text: strings as they are, numbers and booleans printed, bytes as UTF-8. */
export function headerText(value: unknown): string | undefined {
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'bigint' || typeof value === 'boolean')
    return String(value);
  if (Buffer.isBuffer(value)) return value.toString('utf8');
  return undefined;
}

/** A Buffer over the same bytes (no copy). */
export function asBuffer(body: Uint8Array): Buffer {
  return Buffer.isBuffer(body) ? body : Buffer.from(body.buffer, body.byteOffset, body.byteLength);
}
