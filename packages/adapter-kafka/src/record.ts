/**
 * Omnibus messages as Kafka records and back. The key is the record key and the timestamp the
 * record's CreateTime (what `read({ from: { timestamp } })` searches by); the rest of the envelope
 * travels as record headers: those of core's `toHeaders`, written straight into the encoded record
 * by wire.ts (or, where its encoder is not in place, the bag kafkajs encodes).
 */
import {
  BaseDelivery,
  DEFAULT_CONTENT_TYPE,
  type Headers,
  type OutgoingMessage,
  toHeaders,
} from '@omnibus/core';
import type { IHeaders, KafkaMessage, Message } from 'kafkajs';
import { partitionForKey } from './producer.js';
import { ENCODED, encodeRecord, installRecordEncoder } from './wire.js';

// kafkajs encodes each header separately, at a measurable cost per record: JSON, the default, goes without.
const NATIVE = { key: true, timestamp: true, contentType: 'unless-default' } as const;

/** `partition` of an unkeyed record until its batch is formed (see producer.ts). */
export const UNASSIGNED = -1;

/**
 * A record ready for the batcher, and itself the kafkajs message (one object per message, not two).
 * As few own properties as kafkajs needs (it copies each record once per request, at a cost per
 * property): `value`, `headers`, `timestamp`, `partition`, and `key` only when kafkajs encodes the
 * record itself. With wire.ts's encoder in place, `value` is the whole record encoded and
 * `headers` the `ENCODED` marker.
 */
export class OutgoingRecord implements Message {
  // Declared, not defined: the constructor sets each once, in one order (one shape per mode).
  /** Only when kafkajs encodes the record (otherwise it is in `value`). */
  declare readonly key?: string | null;
  declare readonly value: Buffer;
  declare readonly headers: Record<string, string>;
  declare readonly timestamp: string;
  /** The key's partition, or `UNASSIGNED` until the record's batch gets one (see producer.ts). */
  declare partition: number;

  constructor(message: OutgoingMessage, partitions: number) {
    const body = message.body;
    const key = message.key ?? null;
    const value = Buffer.isBuffer(body) ? body : Buffer.from(body.buffer, body.byteOffset, body.byteLength);
    if (installRecordEncoder()) {
      this.value = encodeRecord(message, key, value);
      this.headers = ENCODED;
    } else {
      this.key = key;
      this.value = value;
      this.headers = toHeaders(message, { native: NATIVE });
    }
    this.timestamp = String(message.timestamp);
    this.partition = key === null ? UNASSIGNED : partitionForKey(key, partitions);
  }

  /** Rough encoded size, for batch limits. */
  get size(): number {
    if (this.headers === ENCODED) return this.value.length;
    let size = this.value.length + 80 + (this.key?.length ?? 0);
    for (const name in this.headers) size += name.length + this.headers[name]!.length * 3 + 4;
    return size;
  }
}

/** A fetched record's body, headers (every one as text), key and CreateTime. */
export function fromRecord(record: KafkaMessage) {
  return {
    body: bodyOf(record),
    headers: decodeHeaders(record.headers),
    key: record.key === null ? undefined : record.key.toString('utf8'),
    timestamp: Number(record.timestamp),
  };
}

/**
 * A fetched record as core's delivery: every header as text, the key and the CreateTime; the
 * consumer that fetched it sets the rest and settles it.
 */
export abstract class RecordDelivery extends BaseDelivery {
  constructor(record: KafkaMessage, raw: unknown) {
    super(bodyOf(record), decodeHeaders(record.headers), raw);
    this.key = record.key === null ? undefined : record.key.toString('utf8');
    this.timestamp = Number(record.timestamp);
    // JSON goes without a header (see NATIVE).
    this.contentType = DEFAULT_CONTENT_TYPE;
  }
}

function bodyOf(record: KafkaMessage): Uint8Array {
  const value = record.value;
  return value === null
    ? new Uint8Array(0)
    : new Uint8Array(value.buffer, value.byteOffset, value.byteLength);
}

function decodeHeaders(headers: IHeaders | undefined): Headers {
  const out: Headers = {};
  if (headers === undefined) return out;
  for (const name in headers) {
    const value = headers[name];
    // A header repeated by another producer: the last value wins, as in most Kafka clients' lastHeader().
    const last = Array.isArray(value) ? value[value.length - 1] : value;
    if (last === undefined) continue;
    out[name] = typeof last === 'string' ? last : last.toString('utf8');
  }
  return out;
}
