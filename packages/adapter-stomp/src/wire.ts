/**
 * How a message travels in STOMP frames: core's envelope (`toHeaders`) as frame headers, with every
 * application header whose name a broker would interpret (`priority`, `expires`, `JMSType`,
 * `x-max-priority`…) escaped by core, so none changes how the broker treats the message. STOMP 1.2
 * escaping (`\c`, `\n`, `\r`, `\\`) is done by stompit on the way in and by outgoing.ts (the same
 * rules) on the way out; bodies always carry `content-length`, so binary bodies arrive whole.
 */
import { BaseDelivery, HEADER, type Headers, type OutgoingMessage, toHeaders } from '@omnibus/core';
import type { FrameHeaders } from './stompit.js';

/** Headers STOMP or one of the brokers gives a meaning to (lower case). */
const RESERVED = new Set(
  [
    // STOMP's own
    'destination content-type content-length content-encoding receipt receipt-id message-id subscription ack',
    'id transaction redelivered message selector host login passcode heart-beat version accept-version server session',
    // Message properties and queue declarations the brokers map (JMS, AMQP)
    'persistent priority expires expiration reply-to correlation-id type timestamp durable auto-delete exclusive',
    'prefetch-count amqp-message-id original-destination originalexpiration user-id app-id',
  ].flatMap((words) => words.split(' ')),
);
const RESERVED_PREFIXES = [
  'jms activemq. amq_ amqp- x-queue- x-max- x-message- x-dead-letter- x-stream- x-single- x-overflow',
  'x-expires x-delivery- x-initial- x-quorum- x-death',
].flatMap((words) => words.split(' '));

export function reserved(name: string): boolean {
  const known = reservedNames.get(name);
  if (known !== undefined) return known;
  const lower = name.toLowerCase();
  const answer = RESERVED.has(lower) || RESERVED_PREFIXES.some((p) => lower.startsWith(p));
  // Header names repeat from frame to frame: remember the answers (bounded, for foreign producers).
  if (reservedNames.size >= 1024) reservedNames.clear();
  reservedNames.set(name, answer);
  return answer;
}

const reservedNames = new Map<string, boolean>();

/**
 * SEND headers for a message: the envelope, application and control headers, and `content-length`.
 * `extra`: more envelope headers (a log entry's append reference).
 */
export function frameHeaders(
  destination: string,
  message: OutgoingMessage,
  extra: Readonly<Headers> = {},
): Record<string, string | number> {
  const headers: Record<string, string | number> = {
    destination,
    persistent: 'true',
    'content-type': message.contentType,
    'content-length': message.body.byteLength,
  };
  // Entry by entry, not spread: on node 20 a spread into an object that gets more fields costs
  // microseconds a message (core's toHeaders says more).
  const bag = toHeaders(message, { native: { contentType: true }, escape: reserved, extra });
  for (const name in bag) headers[name] = bag[name]!;
  return headers;
}

/**
 * A MESSAGE frame as core's delivery: the header bag without the frame's and the brokers' own
 * headers (escaped ones stay, core restores them). `message-id` is the id only where the broker
 * keeps it for the message's life (`stableIds`: ActiveMQ's JMS id; RabbitMQ's names the delivery).
 * `subjectOf` derives a subject from the destination when a foreign producer sent none. A class, one
 * per message, its fields set one by one: a literal spread with closures per message cost STOMP
 * consumers microseconds each (docs/benchmarks.md). Subclasses settle it.
 */
export abstract class FrameDelivery extends BaseDelivery {
  constructor(
    frame: FrameHeaders,
    body: Buffer,
    stableIds: boolean,
    subjectOf?: (destination: string) => string | undefined,
  ) {
    const headers: Headers = {};
    for (const name in frame) {
      const value = frame[name];
      if (value !== undefined && !reserved(name)) headers[name] = String(value);
    }
    super(body, headers, { headers: frame, body });
    if (stableIds) this.id = text(frame, 'message-id');
    this.contentType = text(frame, 'content-type');
    const destination = text(frame, 'destination');
    this.subject =
      headers[HEADER.subject] ?? (destination === undefined ? undefined : subjectOf?.(destination));
    const priority = text(frame, 'priority');
    if (priority !== undefined) this.priority = Number(priority);
    const sentAt = Number(text(frame, 'timestamp'));
    if (Number.isFinite(sentAt) && sentAt > 0) this.timestamp = sentAt;
    this.redelivered = text(frame, 'redelivered') === 'true';
  }
}

function text(frame: FrameHeaders, name: string): string | undefined {
  const value = frame[name];
  return value === undefined ? undefined : String(value);
}

/** A MESSAGE frame's fields, as `browse` lists them. */
export function received(frame: FrameHeaders, body: Buffer, stableIds: boolean) {
  const d = new Browsed(frame, body, stableIds);
  return {
    body: d.body,
    headers: d.headers,
    id: d.id,
    contentType: d.contentType,
    subject: d.subject,
    priority: d.priority,
    timestamp: d.timestamp,
    raw: d.raw,
  };
}

class Browsed extends FrameDelivery {
  ack(): Promise<void> {
    return Promise.resolve();
  }
}
