/**
 * How Omnibus messages look on MQTT: topic names and filters for subjects and patterns, and where
 * core's header bag travels — MQTT 5 user properties, or on MQTT 3.1.1 core's envelope in the
 * payload (the protocol has nowhere else to put it).
 */
import {
  compilePattern,
  type Headers,
  type OutgoingMessage,
  type SubjectMatcher,
  toHeaders,
  unwrapBody,
  ValidationError,
  wrapBody,
} from '@omnibus/core';
import type { IPublishPacket } from 'mqtt';

/** MQTT's limit for a topic name, in UTF-8 bytes. */
const MAX_TOPIC_BYTES = 65535;

/**
 * The last few hundred answers of a function of two strings: topic names and subjects repeat from
 * message to message, and splitting, joining and checking them again cost measurably per message.
 */
class Memo<T> {
  private readonly map = new Map<string, Map<string, T>>();
  private size = 0;

  constructor(private readonly compute: (a: string, b: string) => T) {}

  get(a: string, b: string): T {
    let inner = this.map.get(a);
    const known = inner?.get(b);
    if (known !== undefined) return known;
    const value = this.compute(a, b);
    if (this.size >= MEMO_SIZE) {
      this.map.clear();
      this.size = 0;
      inner = undefined;
    }
    if (inner === undefined) {
      inner = new Map();
      this.map.set(a, inner);
    }
    inner.set(b, value);
    this.size++;
    return value;
  }
}

const MEMO_SIZE = 512;

/** `orders.eu.created` on topic `shop` → `shop/orders/eu/created`; no subject → `shop`. */
export function topicName(topic: string, subject: string | undefined): string {
  if (subject === undefined) {
    assertTopicName(topic);
    return topic;
  }
  // Only valid names are remembered: an invalid one throws every time.
  return topicNames.get(topic, subject);
}

const topicNames = new Memo((topic, subject) => {
  const name = `${topic}/${subject.split('.').join('/')}`;
  assertTopicName(name);
  return name;
});

/** `<queuePrefix>/<queue>`, the topic a queue's messages are published to, checked as a topic name. */
export function queueTopicName(queuePrefix: string, queue: string): string {
  // Only valid names are remembered: an invalid one throws every time.
  return queueTopicNames.get(queuePrefix, queue);
}

const queueTopicNames = new Memo((queuePrefix, queue) => {
  const name = `${queuePrefix}/${queue}`;
  assertTopicName(name);
  return name;
});

/** Rejects what a broker would refuse (or misread as a filter) before it is sent. */
export function assertTopicName(name: string): void {
  if (name.length === 0 || /[+#]/.test(name) || name.includes('\u0000')) {
    throw new ValidationError(
      `"${name.replaceAll('\u0000', '\\u0000')}" is not a valid MQTT topic name: no "+", "#" or NUL`,
      [],
      { adapter: 'mqtt' },
    );
  }
  assertTopicLength(name, 'name');
}

function assertTopicLength(topic: string, what: 'name' | 'filter'): void {
  if (Buffer.byteLength(topic) > MAX_TOPIC_BYTES) {
    throw new ValidationError(`MQTT topic ${what} is longer than ${MAX_TOPIC_BYTES} bytes`, [], {
      adapter: 'mqtt',
    });
  }
}

export interface TopicFilter {
  /** The MQTT filter to subscribe to. */
  readonly filter: string;
  /** Set when MQTT cannot express the pattern (a `#` before the last word): filter on the client. */
  readonly matches: SubjectMatcher | undefined;
}

/**
 * `*` → `+`, a final `#` → `#` (MQTT's `t/#` also matches `t` itself, as our `#` matches zero
 * words). A `#` before the last word has no MQTT form: subscribe to everything from there on and
 * filter on the client with `compilePattern`.
 */
export function topicFilter(topic: string, pattern: string): TopicFilter {
  const words = pattern.split('.');
  const inner = words.findIndex((w, i) => w === '#' && i < words.length - 1);
  const native = inner < 0 ? words : [...words.slice(0, inner), '#'];
  const filter = [topic, ...native.map((w) => (w === '*' ? '+' : w))].join('/');
  assertTopicLength(filter, 'filter');
  return { filter, matches: inner < 0 ? undefined : compilePattern(pattern) };
}

/** The subject of a message received on `name` for topic `topic` (undefined for the topic itself). */
export function subjectOf(topic: string, name: string): string | undefined {
  if (name === topic || !name.startsWith(`${topic}/`)) return undefined;
  return subjects.get(topic, name);
}

const subjects = new Memo((topic, name) =>
  name
    .slice(topic.length + 1)
    .split('/')
    .join('.'),
);

/** A PUBLISH's payload and (MQTT 5) properties, as the publisher takes them. */
export interface Encoded {
  readonly payload: Uint8Array;
  readonly properties?: NonNullable<IPublishPacket['properties']>;
}

/** A received PUBLISH: its whole header bag (core reads the envelope out of it) and its body. */
export interface Decoded {
  readonly headers: Headers;
  readonly body: Uint8Array;
  readonly contentType?: string | undefined;
}

/**
 * Puts a header bag beside a body: MQTT 5 user properties (the content type is a property of its
 * own), or on 3.1.1 with `wrap` core's envelope in the payload; 3.1.1 without it carries the body
 * alone. On MQTT 5 the bag becomes the user properties as it is: pass one made for this message.
 */
export function encode(protocolVersion: 4 | 5, decoded: Decoded, wrap: boolean): Encoded {
  if (protocolVersion === 5) {
    // The bag is the caller's own (a fresh one per message): no copy.
    const properties: NonNullable<IPublishPacket['properties']> = { userProperties: decoded.headers };
    if (decoded.contentType !== undefined) properties.contentType = decoded.contentType;
    return { payload: decoded.body, properties };
  }
  return { payload: wrap ? wrapBody(decoded.headers, decoded.body) : decoded.body };
}

/** An outgoing message on the wire; `subjectInTopic` when the topic name already carries the subject. */
export function encodeMessage(
  protocolVersion: 4 | 5,
  message: OutgoingMessage,
  wrap: boolean,
  subjectInTopic = false,
): Encoded {
  // 3.1.1 has no content type property: it travels in the envelope.
  const v5 = protocolVersion === 5;
  const headers = toHeaders(message, { native: { contentType: v5, subject: subjectInTopic } });
  const contentType = v5 ? message.contentType : undefined;
  return encode(protocolVersion, { headers, body: message.body, contentType }, wrap);
}

/** Reads a PUBLISH back; a 3.1.1 payload without an envelope (another client's) is all body. */
export function decode(protocolVersion: 4 | 5, packet: IPublishPacket): Decoded {
  const payload = packet.payload as Buffer;
  if (protocolVersion === 4) return unwrapBody(payload);
  const headers: Record<string, string> = {};
  const properties = packet.properties?.userProperties;
  for (const name in properties) {
    const value = properties[name];
    headers[name] = Array.isArray(value) ? (value[0] ?? '') : String(value);
  }
  return { headers, body: payload, contentType: packet.properties?.contentType };
}
