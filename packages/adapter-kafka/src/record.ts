/**
 * Omnibus messages as Kafka records and back. The id, subject and content type travel as record
 * headers next to the application's own; the key is the record key; the timestamp is the record's
 * CreateTime (what `read({ from: { timestamp } })` searches by).
 */
import type { Headers, OutgoingMessage } from '@omnibus/core';
import type { IHeaders, KafkaMessage, Message } from 'kafkajs';

/** Transport headers of this adapter; removed before the application sees the headers. */
export const KAFKA_HEADER = {
  id: 'x-omnibus-id',
  subject: 'x-omnibus-subject',
  contentType: 'x-omnibus-content-type',
} as const;

const TRANSPORT = new Set<string>(Object.values(KAFKA_HEADER));
const JSON_TYPE = 'application/json';

/** A record ready for kafkajs, with the partition it goes to. */
export interface OutgoingRecord {
  readonly message: Message & { partition: number };
  /** Rough encoded size, for batch limits. */
  readonly size: number;
}

export function toRecord(message: OutgoingMessage, partition: number): OutgoingRecord {
  const headers: Record<string, string> = { ...message.headers, [KAFKA_HEADER.id]: message.id };
  // kafkajs encodes each header separately, at a measurable cost per record: JSON, the default, goes without.
  if (message.contentType !== JSON_TYPE) headers[KAFKA_HEADER.contentType] = message.contentType;
  if (message.subject !== undefined) headers[KAFKA_HEADER.subject] = message.subject;
  let size = message.body.byteLength + 80 + (message.key?.length ?? 0);
  for (const [name, value] of Object.entries(headers)) size += name.length + value.length * 3 + 4;
  return {
    message: {
      key: message.key ?? null,
      value: Buffer.from(message.body.buffer, message.body.byteOffset, message.body.byteLength),
      headers,
      timestamp: String(message.timestamp),
      partition,
    },
    size,
  };
}

/** What a Delivery needs from a fetched record. */
export interface IncomingRecord {
  readonly id: string;
  readonly body: Uint8Array;
  readonly headers: Headers;
  readonly key: string | undefined;
  readonly subject: string | undefined;
  readonly contentType: string;
  readonly timestamp: number;
}

export function fromRecord(topic: string, partition: number, record: KafkaMessage): IncomingRecord {
  const all = decodeHeaders(record.headers);
  const headers: Headers = {};
  for (const [name, value] of Object.entries(all)) if (!TRANSPORT.has(name)) headers[name] = value;
  const value = record.value;
  return {
    id: all[KAFKA_HEADER.id] ?? `${topic}-${partition}-${record.offset}`,
    body:
      value === null ? new Uint8Array(0) : new Uint8Array(value.buffer, value.byteOffset, value.byteLength),
    headers,
    key: record.key === null ? undefined : record.key.toString('utf8'),
    subject: all[KAFKA_HEADER.subject],
    contentType: all[KAFKA_HEADER.contentType] ?? JSON_TYPE,
    timestamp: Number(record.timestamp),
  };
}

function decodeHeaders(headers: IHeaders | undefined): Headers {
  const out: Headers = {};
  if (headers === undefined) return out;
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined) continue;
    // A header repeated by another producer: the last value wins, as in most Kafka clients' lastHeader().
    const last = Array.isArray(value) ? value[value.length - 1] : value;
    if (last === undefined) continue;
    out[name] = typeof last === 'string' ? last : last.toString('utf8');
  }
  return out;
}
