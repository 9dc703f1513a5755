/**
 * Omnibus messages as Kafka records and back. The key is the record key and the timestamp the
 * record's CreateTime (what `read({ from: { timestamp } })` searches by); the rest of the envelope
 * travels as record headers, built by core (`toHeaders`).
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

const IN_ENCODED: Record<string, string> = Object.freeze({});

/**
 * A record ready for the batcher, and itself the kafkajs message (one object per message, not two):
 * kafkajs reads `key`, `value`, `headers`, `timestamp` and `partition`.
 */
export class OutgoingRecord implements Message {
  // Declared, not defined: the constructor sets each once, in one order (one shape, no computed-key define per record).
  declare readonly key: string | null;
  declare readonly value: Buffer;
  /** The header bag when kafkajs encodes the record itself; empty when `[ENCODED]` has them (see wire.ts). */
  declare readonly headers: Record<string, string>;
  /** Key, value and headers encoded for kafkajs' Produce request, when wire.ts's encoder is in place. */
  declare readonly [ENCODED]: Buffer | undefined;
  declare readonly timestamp: string;
  /** Given when the batch is formed for an unkeyed record (see producer.ts). */
  declare partition: number;
  /** Unkeyed: it goes to the partition its batch is given (see producer.ts). */
  declare readonly sticky: boolean;
  /** Rough encoded size, for batch limits. */
  declare readonly size: number;

  /** Partitions of the topic it goes to. */
  declare readonly partitions: number;

  constructor(message: OutgoingMessage, partitions: number) {
    const body = message.body;
    const key = message.key ?? null;
    const value = Buffer.isBuffer(body) ? body : Buffer.from(body.buffer, body.byteOffset, body.byteLength);
    let size: number;
    if (installRecordEncoder()) {
      const encoded = encodeRecord(message, key, value);
      size = encoded.length + 20;
      this.headers = IN_ENCODED;
      this[ENCODED] = encoded;
    } else {
      const headers = toHeaders(message, { native: NATIVE });
      size = body.byteLength + 80 + (message.key?.length ?? 0);
      for (const name in headers) size += name.length + headers[name]!.length * 3 + 4;
      this.headers = headers;
      this[ENCODED] = undefined;
    }
    this.key = key;
    this.value = value;
    this.timestamp = String(message.timestamp);
    this.partition = message.key === undefined ? 0 : partitionForKey(message.key, partitions);
    this.sticky = message.key === undefined;
    this.size = size;
    this.partitions = partitions;
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
