/**
 * Omnibus messages as Kafka records and back. The key is the record key and the timestamp the
 * record's CreateTime (what `read({ from: { timestamp } })` searches by); the rest of the envelope
 * travels as record headers, built by core (`toHeaders`).
 */
import { type Headers, type OutgoingMessage, toHeaders } from '@omnibus/core';
import type { IHeaders, KafkaMessage, Message } from 'kafkajs';

// kafkajs encodes each header separately, at a measurable cost per record: JSON, the default, goes without.
const NATIVE = { key: true, timestamp: true, contentType: 'unless-default' } as const;

/** A record ready for kafkajs, with the partition it goes to. */
export interface OutgoingRecord {
  readonly message: Message & { partition: number };
  /** Rough encoded size, for batch limits. */
  readonly size: number;
}

export function toRecord(message: OutgoingMessage, partition: number): OutgoingRecord {
  const headers = toHeaders(message, { native: NATIVE });
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

/** What a delivery carries of a fetched record: every header as text, the key and the CreateTime. */
export function fromRecord(record: KafkaMessage) {
  const value = record.value;
  return {
    body:
      value === null ? new Uint8Array(0) : new Uint8Array(value.buffer, value.byteOffset, value.byteLength),
    headers: decodeHeaders(record.headers),
    key: record.key === null ? undefined : record.key.toString('utf8'),
    timestamp: Number(record.timestamp),
  };
}

function decodeHeaders(headers: IHeaders | undefined): Headers {
  const out: Headers = {};
  if (headers === undefined) return out;
  for (const [name, value] of Object.entries(headers)) {
    // A header repeated by another producer: the last value wins, as in most Kafka clients' lastHeader().
    const last = Array.isArray(value) ? value[value.length - 1] : value;
    if (last === undefined) continue;
    out[name] = typeof last === 'string' ? last : last.toString('utf8');
  }
  return out;
}
