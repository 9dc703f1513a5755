/**
 * How an Omnibus message travels as an AMQP 0-9-1 message: id → `message-id`, content type →
 * `content-type`, priority → `priority`, application and `x-omnibus-` headers → the headers table
 * (as strings). What AMQP has no property for travels in adapter headers that the application
 * never sees: the key, the millisecond timestamp (AMQP's `timestamp` is in seconds), the subject of
 * a copy that no longer carries it as its routing key, and the append reference of a log entry.
 */
import type { Headers, OutgoingMessage } from '@omnibus/core';
import type { Message as AmqpMessage, Options as AmqpOptions, MessageProperties } from 'amqplib';

export const PRIVATE_HEADER = {
  key: 'x-omnibus-key',
  timestamp: 'x-omnibus-timestamp',
  subject: 'x-omnibus-subject',
  /** Matches a log entry read back by its appender to the append that wrote it. */
  ref: 'x-omnibus-ref',
} as const;

/** Headers the broker adds (dead-lettering, streams, quorum queues) or the adapter uses: not the application's. */
const HIDDEN = new Set<string>([
  ...Object.values(PRIVATE_HEADER),
  'x-death',
  'x-first-death-exchange',
  'x-first-death-queue',
  'x-first-death-reason',
  'x-last-death-exchange',
  'x-last-death-queue',
  'x-last-death-reason',
  'x-stream-offset',
  'x-delivery-count',
  'CC',
  'BCC',
]);

/** Publish options for a message Omnibus sends for the first time. */
export function publishOptions(message: OutgoingMessage, extra: Readonly<Headers> = {}): AmqpOptions.Publish {
  const headers: Record<string, string> = {
    ...message.headers,
    [PRIVATE_HEADER.timestamp]: String(message.timestamp),
    ...extra,
  };
  if (message.key !== undefined) headers[PRIVATE_HEADER.key] = message.key;
  return {
    messageId: message.id,
    contentType: message.contentType,
    timestamp: Math.floor(message.timestamp / 1000),
    persistent: true,
    headers,
    ...(message.priority === undefined ? {} : { priority: message.priority }),
  };
}

/** Publish options for a copy of a received message (a retry or a dead letter) carrying `headers`. */
export function copyOptions(
  original: AmqpMessage,
  decoded: Decoded,
  headers: Readonly<Headers>,
): AmqpOptions.Publish {
  const p: MessageProperties = original.properties;
  const table: Record<string, string> = { ...headers, [PRIVATE_HEADER.timestamp]: String(decoded.timestamp) };
  if (decoded.key !== undefined) table[PRIVATE_HEADER.key] = decoded.key;
  if (decoded.subject !== undefined) table[PRIVATE_HEADER.subject] = decoded.subject;
  return {
    persistent: true,
    headers: table,
    ...(typeof p.messageId === 'string' ? { messageId: p.messageId } : {}),
    ...(typeof p.contentType === 'string' ? { contentType: p.contentType } : {}),
    ...(typeof p.timestamp === 'number' ? { timestamp: p.timestamp } : {}),
    ...(typeof p.priority === 'number' ? { priority: p.priority } : {}),
  };
}

export interface Decoded {
  readonly id: string;
  readonly body: Uint8Array;
  readonly headers: Headers;
  readonly key: string | undefined;
  readonly subject: string | undefined;
  readonly priority: number | undefined;
  readonly timestamp: number;
}

/**
 * Reads a delivered message. `topicExchange`: the topic the subscription listens to, whose
 * routing key is the subject (an empty routing key means no subject).
 */
export function decode(msg: AmqpMessage, topicExchange?: string): Decoded {
  const p = msg.properties;
  const table = (p.headers ?? {}) as Record<string, unknown>;
  const headers: Headers = {};
  for (const name in table) {
    if (HIDDEN.has(name)) continue;
    const text = headerText(table[name]);
    if (text !== undefined) headers[name] = text;
  }
  const key = headerText(table[PRIVATE_HEADER.key]);
  let subject = headerText(table[PRIVATE_HEADER.subject]);
  if (subject === undefined && topicExchange !== undefined && msg.fields.exchange === topicExchange) {
    subject = msg.fields.routingKey === '' ? undefined : msg.fields.routingKey;
  }
  const ms = Number(headerText(table[PRIVATE_HEADER.timestamp]));
  const timestamp = Number.isFinite(ms)
    ? ms
    : typeof p.timestamp === 'number'
      ? p.timestamp * 1000
      : Date.now();
  return {
    id: typeof p.messageId === 'string' && p.messageId !== '' ? p.messageId : fallbackId(msg),
    body: msg.content,
    headers,
    key,
    subject,
    priority: typeof p.priority === 'number' ? p.priority : undefined,
    timestamp,
  };
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

function fallbackId(msg: AmqpMessage): string {
  const offset = (msg.properties.headers as Record<string, unknown> | undefined)?.['x-stream-offset'];
  return offset === undefined ? `amqp-${msg.fields.deliveryTag}` : `stream-${String(offset)}`;
}
