/**
 * How a message travels in STOMP frames. Omnibus metadata rides in `x-omnibus-*` headers; an
 * application header whose name a broker would interpret (`priority`, `expires`, `JMSType`,
 * `x-max-priority`…) travels as `x-omnibus-h-<name>`, so every header round-trips exactly and none
 * changes how the broker treats the message. STOMP 1.2 escaping (`\c`, `\n`, `\r`, `\\`) is done by
 * stompit on both sides; bodies always carry `content-length`, so binary bodies arrive whole.
 */
import type { Headers, OutgoingMessage } from '@omnibus/core';
import type { FrameHeaders } from './stompit.js';

export const META = {
  id: 'x-omnibus-id',
  timestamp: 'x-omnibus-timestamp',
  key: 'x-omnibus-key',
  subject: 'x-omnibus-subject',
} as const;

const ESCAPED_PREFIX = 'x-omnibus-h-';
const METADATA = new Set<string>(Object.values(META));

/** Headers STOMP or one of the brokers gives a meaning to (lower case). */
const RESERVED = new Set([
  'destination',
  'content-type',
  'content-length',
  'content-encoding',
  'receipt',
  'receipt-id',
  'message-id',
  'subscription',
  'ack',
  'id',
  'transaction',
  'redelivered',
  'persistent',
  'priority',
  'expires',
  'expiration',
  'reply-to',
  'correlation-id',
  'type',
  'timestamp',
  'message',
  'selector',
  'durable',
  'auto-delete',
  'exclusive',
  'prefetch-count',
  'amqp-message-id',
  'original-destination',
  'originalexpiration',
  'user-id',
  'app-id',
  'host',
  'login',
  'passcode',
  'heart-beat',
  'version',
  'accept-version',
  'server',
  'session',
]);
const RESERVED_PREFIXES = [
  'jms',
  'activemq.',
  'amq_',
  'amqp-',
  'x-queue-',
  'x-max-',
  'x-message-',
  'x-dead-letter-',
  'x-stream-',
  'x-single-',
  'x-overflow',
  'x-expires',
  'x-delivery-',
  'x-initial-',
  'x-quorum-',
  'x-death',
];

function reserved(name: string): boolean {
  const lower = name.toLowerCase();
  return RESERVED.has(lower) || RESERVED_PREFIXES.some((p) => lower.startsWith(p));
}

/** SEND headers for a message: metadata, application and control headers, and `content-length`. */
export function sendHeaders(
  destination: string,
  message: OutgoingMessage,
  headers: Headers = message.headers,
): Record<string, string | number> {
  const out: Record<string, string | number> = {
    destination,
    persistent: 'true',
    'content-type': message.contentType,
    'content-length': message.body.byteLength,
    [META.id]: message.id,
    [META.timestamp]: String(message.timestamp),
  };
  if (message.key !== undefined) out[META.key] = message.key;
  if (message.subject !== undefined) out[META.subject] = message.subject;
  for (const [name, value] of Object.entries(headers)) {
    out[!name.startsWith('x-omnibus-') && reserved(name) ? `${ESCAPED_PREFIX}${name}` : name] = value;
  }
  return out;
}

export interface IncomingMessage {
  readonly id: string;
  readonly headers: Headers;
  readonly key: string | undefined;
  readonly subject: string | undefined;
  readonly timestamp: number;
  readonly priority: number | undefined;
  readonly redelivered: boolean;
}

/**
 * Reads a MESSAGE frame's headers: metadata out, broker headers dropped, escaped application headers
 * restored. `subjectOf` derives a subject from the destination when a foreign producer sent none.
 */
export function readMessage(frame: FrameHeaders, subjectOf?: (destination: string) => string | undefined) {
  const headers: Headers = {};
  for (const [name, raw] of Object.entries(frame)) {
    if (raw === undefined) continue;
    const value = String(raw);
    if (name.startsWith(ESCAPED_PREFIX)) headers[name.slice(ESCAPED_PREFIX.length)] = value;
    else if (!METADATA.has(name) && !reserved(name)) headers[name] = value;
  }
  const text = (name: string) => (frame[name] === undefined ? undefined : String(frame[name]));
  const sentAt = Number(text(META.timestamp) ?? text('timestamp'));
  const priority = text('priority');
  const destination = text('destination');
  const message: IncomingMessage = {
    id: text(META.id) ?? text('message-id') ?? '',
    headers,
    key: text(META.key),
    subject: text(META.subject) ?? (destination === undefined ? undefined : subjectOf?.(destination)),
    timestamp: Number.isFinite(sentAt) && sentAt > 0 ? sentAt : Date.now(),
    priority: priority === undefined ? undefined : Number(priority),
    redelivered: text('redelivered') === 'true',
  };
  return message;
}

/** ACK/NACK headers for a MESSAGE frame, for STOMP 1.2 (`id`) and 1.1/1.0 (`subscription`, `message-id`). */
export function settleHeaders(frame: FrameHeaders): Record<string, string> {
  const out: Record<string, string> = {};
  const ack = frame.ack ?? frame['message-id'];
  if (ack !== undefined) out.id = String(ack);
  if (frame.subscription !== undefined) out.subscription = String(frame.subscription);
  if (frame['message-id'] !== undefined) out['message-id'] = String(frame['message-id']);
  return out;
}
