/**
 * How Omnibus messages look on MQTT: topic names and filters for subjects and patterns, and where
 * id, key, timestamp and headers travel — MQTT 5 user properties, or on MQTT 3.1.1 an envelope in
 * the payload (the protocol has nowhere else to put them).
 */
import { randomUUID } from 'node:crypto';
import { compilePattern, type Headers, type SubjectMatcher, ValidationError } from '@omnibus/core';
import type { IPublishPacket } from 'mqtt';

/** MQTT's limit for a topic name, in UTF-8 bytes. */
const MAX_TOPIC_BYTES = 65535;

/** `orders.eu.created` on topic `shop` → `shop/orders/eu/created`; no subject → `shop`. */
export function topicName(topic: string, subject: string | undefined): string {
  const name = subject === undefined ? topic : `${topic}/${subject.split('.').join('/')}`;
  assertTopicName(name);
  return name;
}

/** Rejects what a broker would refuse (or misread as a filter) before it is sent. */
export function assertTopicName(name: string): void {
  if (name.length === 0 || /[+#]/.test(name) || name.includes('\u0000')) {
    throw new ValidationError(
      `"${name.replaceAll('\u0000', '\\u0000')}" is not a valid MQTT topic name: no "+", "#" or NUL`,
      [],
      { adapter: 'mqtt' },
    );
  }
  if (Buffer.byteLength(name) > MAX_TOPIC_BYTES) {
    throw new ValidationError(`MQTT topic name is longer than ${MAX_TOPIC_BYTES} bytes`, [], {
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
  if (Buffer.byteLength(filter) > MAX_TOPIC_BYTES) {
    throw new ValidationError(`MQTT topic filter is longer than ${MAX_TOPIC_BYTES} bytes`, [], {
      adapter: 'mqtt',
    });
  }
  return { filter, matches: inner < 0 ? undefined : compilePattern(pattern) };
}

/** The subject of a message received on `name` for topic `topic` (undefined for the topic itself). */
export function subjectOf(topic: string, name: string): string | undefined {
  if (name === topic || !name.startsWith(`${topic}/`)) return undefined;
  return name
    .slice(topic.length + 1)
    .split('/')
    .join('.');
}

/** What travels beside the payload. */
export interface Meta {
  readonly id: string;
  readonly timestamp: number;
  readonly headers: Headers;
  readonly contentType?: string | undefined;
  readonly key?: string | undefined;
  readonly subject?: string | undefined;
  /** Set on a copy the adapter published back because its consumer closed before handling it. */
  readonly redelivered?: boolean | undefined;
}

/** The adapter's own user properties; they never reach `message.headers`. */
const P = {
  id: 'x-omnibus-id',
  timestamp: 'x-omnibus-timestamp',
  key: 'x-omnibus-key',
  subject: 'x-omnibus-subject',
  redelivered: 'x-omnibus-redelivered',
} as const;
const OWN = new Set<string>(Object.values(P));

/** MQTT 5 PUBLISH properties for a message. A fresh object each time (the publisher tracks it). */
export function toProperties(meta: Meta): NonNullable<IPublishPacket['properties']> {
  const userProperties: Record<string, string> = { ...meta.headers };
  userProperties[P.id] = meta.id;
  userProperties[P.timestamp] = String(meta.timestamp);
  if (meta.key !== undefined) userProperties[P.key] = meta.key;
  if (meta.subject !== undefined) userProperties[P.subject] = meta.subject;
  if (meta.redelivered === true) userProperties[P.redelivered] = '1';
  return meta.contentType === undefined
    ? { userProperties }
    : { userProperties, contentType: meta.contentType };
}

/** Reads MQTT 5 properties; a message from another client gets a fresh id and the receive time. */
export function fromProperties(properties: IPublishPacket['properties']): Meta {
  const headers: Headers = {};
  const own: Record<string, string> = {};
  for (const [name, value] of Object.entries(properties?.userProperties ?? {})) {
    const text = Array.isArray(value) ? (value[0] ?? '') : String(value);
    if (OWN.has(name)) own[name] = text;
    else headers[name] = text;
  }
  const timestamp = Number(own[P.timestamp]);
  return {
    id: own[P.id] ?? randomUUID(),
    timestamp: Number.isFinite(timestamp) ? timestamp : Date.now(),
    headers,
    contentType: properties?.contentType,
    key: own[P.key],
    subject: own[P.subject],
    redelivered: own[P.redelivered] === '1',
  };
}

/** `\0OMB\x01`, a big-endian u32 length, the JSON metadata, then the body. */
const MAGIC = Buffer.from([0x00, 0x4f, 0x4d, 0x42, 0x01]);

/** MQTT 3.1.1: the metadata wrapped into the payload. */
export function envelope(meta: Meta, body: Uint8Array): Buffer {
  const json = Buffer.from(
    JSON.stringify({
      i: meta.id,
      t: meta.timestamp,
      h: meta.headers,
      ...(meta.contentType === undefined ? {} : { c: meta.contentType }),
      ...(meta.key === undefined ? {} : { k: meta.key }),
      ...(meta.subject === undefined ? {} : { s: meta.subject }),
      ...(meta.redelivered === true ? { r: 1 } : {}),
    }),
  );
  const length = Buffer.alloc(4);
  length.writeUInt32BE(json.length);
  return Buffer.concat([MAGIC, length, json, body]);
}

/** Unwraps an envelope; a payload without one (another client's) is all body. */
export function unwrap(payload: Buffer): { meta: Meta; body: Uint8Array } {
  if (payload.length >= MAGIC.length + 4 && payload.subarray(0, MAGIC.length).equals(MAGIC)) {
    const length = payload.readUInt32BE(MAGIC.length);
    const start = MAGIC.length + 4;
    if (start + length <= payload.length) {
      try {
        const m = JSON.parse(payload.subarray(start, start + length).toString('utf8')) as Record<
          string,
          unknown
        >;
        return {
          meta: {
            id: typeof m.i === 'string' ? m.i : randomUUID(),
            timestamp: typeof m.t === 'number' ? m.t : Date.now(),
            headers: isHeaders(m.h) ? m.h : {},
            contentType: typeof m.c === 'string' ? m.c : undefined,
            key: typeof m.k === 'string' ? m.k : undefined,
            subject: typeof m.s === 'string' ? m.s : undefined,
            redelivered: m.r === 1,
          },
          body: payload.subarray(start + length),
        };
      } catch {
        // Not ours after all: hand it over whole.
      }
    }
  }
  return { meta: { id: randomUUID(), timestamp: Date.now(), headers: {} }, body: payload };
}

function isHeaders(value: unknown): value is Headers {
  return (
    typeof value === 'object' && value !== null && Object.values(value).every((v) => typeof v === 'string')
  );
}
