import { createRequire } from 'node:module';
import { type OutgoingMessage, toHeaders } from '@omnibus/core';
import { describe, expect, it } from 'vitest';
import { kafka } from '../src/index.js';
import { OutgoingRecord } from '../src/record.js';
import {
  type BatchFields,
  ENCODED,
  encodeBatch,
  encodeRecord,
  finishRecord,
  installRecordEncoder,
} from '../src/wire.js';

const require = createRequire(import.meta.url);
type Encoded = { buf: Buffer; offset: number };
/** kafkajs' record encoder (or the replacement, which hands any record it did not encode to it). */
const kafkajsRecord = require('kafkajs/src/protocol/recordBatch/record/v0/index.js') as (
  record: object,
) => Encoded;
const produceRequest = require('kafkajs/src/protocol/requests/produce/v3/request.js') as (args: object) => {
  encode(): Promise<{ buffer: Buffer }>;
};
const NATIVE = { key: true, timestamp: true, contentType: 'unless-default' } as const;

const base: OutgoingMessage = {
  id: '3b241101-e2bb-4255-8caf-4136c566a962',
  body: Buffer.alloc(1024, 7),
  headers: {},
  contentType: 'application/octet-stream',
  timestamp: 1_764_480_000_000,
};
const messages: Record<string, OutgoingMessage> = {
  'bytes, no key': base,
  'JSON (no content-type header), a key': { ...base, contentType: 'application/json', key: 'order-17' },
  'application and control headers, subject, non-ASCII everywhere': {
    ...base,
    id: 'ïd-✓',
    key: 'clé',
    subject: 'orders.créé',
    headers: {
      tenant: 'ácme',
      'x-omnibus-attempt': '3',
      'x-omnibus-first-failure': '2026-11-30T06:00:00.000Z',
      e: '',
    },
    contentType: 'text/plain; charset=utf-8',
  },
  'an empty body': { ...base, body: new Uint8Array(0) },
  'a body larger than the buffer pool': { ...base, body: new Uint8Array(70_000).fill(1) },
  'a body that is a view into a larger buffer': {
    ...base,
    body: new Uint8Array(Buffer.alloc(300, 9).buffer, 17, 200),
  },
};

function bytes(encoded: Encoded): string {
  return encoded.buf.subarray(0, encoded.offset).toString('hex');
}

/** A kafkajs module as it is before the adapter replaces it: loaded afresh, the cache put back. */
function freshly<T>(module: string): T {
  const path = require.resolve(module);
  const cached = require.cache[path];
  delete require.cache[path];
  try {
    return require(path) as T;
  } finally {
    require.cache[path] = cached;
  }
}

function asBuffer(body: Uint8Array): Buffer {
  return Buffer.from(body.buffer, body.byteOffset, body.byteLength);
}

describe('records encoded once (wire.ts)', () => {
  it('is in place once the adapter is imported', () => {
    expect(kafka).toBeTypeOf('function');
    expect(installRecordEncoder()).toBe(true);
  });

  for (const [name, message] of Object.entries(messages)) {
    it(`writes what kafkajs writes for the same record and headers: ${name}`, () => {
      const key = message.key ?? null;
      const value = asBuffer(message.body);
      const headers = toHeaders(message, { native: NATIVE });
      for (const offsetDelta of [0, 1, 63, 64, 499, 100_000]) {
        for (const timestampDelta of [0, 63, 64, 8191, 1_764_480_000_123, -1]) {
          const fields = { offsetDelta, timestampDelta };
          const theirs = kafkajsRecord({ ...fields, key, value, headers });
          const ours = finishRecord({
            ...fields,
            headers: ENCODED,
            value: encodeRecord(message, key, value),
          });
          expect(bytes(ours)).toBe(bytes(theirs));
        }
      }
    });
  }

  it('makes the same Produce request from records as kafkajs makes from messages with their headers', async () => {
    const records = Object.values(messages).map((m) => new OutgoingRecord(m, 1));
    expect(records.every((r) => r.headers === ENCODED)).toBe(true);
    const plain = Object.values(messages).map((m) => ({
      key: m.key ?? null,
      value: asBuffer(m.body),
      headers: toHeaders(m, { native: NATIVE }),
      timestamp: String(m.timestamp),
    }));
    const request = async (batch: object[]) =>
      (
        await produceRequest({
          acks: -1,
          timeout: 1000,
          topicData: [{ topic: 't', partitions: [{ partition: 0, messages: batch }] }],
        }).encode()
      ).buffer.toString('hex');
    const ours = await request(records);
    expect(ours).toBe(await request(plain));
    // Again (a retried request encodes the same records a second time).
    expect(await request(records)).toBe(ours);
  });

  it('writes a batch of its records as kafkajs writes it, in one buffer of the exact size', async () => {
    const original = freshly<{ RecordBatch: (fields: BatchFields) => Promise<Encoded> }>(
      'kafkajs/src/protocol/recordBatch/v0/index.js',
    ).RecordBatch;
    const Long = require('kafkajs/src/utils/long.js') as { fromValue(value: unknown): unknown };
    const list = Object.values(messages);
    const finished = (count: number) =>
      Array.from({ length: count }, (_, i) => {
        const message = list[i % list.length]!;
        const value = asBuffer(message.body);
        return finishRecord({
          offsetDelta: i,
          timestampDelta: i * 997,
          headers: ENCODED,
          value: encodeRecord(message, message.key ?? null, value),
        });
      });
    const cases: BatchFields[] = [
      {
        records: finished(1),
        firstTimestamp: '1764480000000',
        maxTimestamp: '1764480000000',
        lastOffsetDelta: 0,
      },
      {
        records: finished(500),
        compression: 0,
        firstTimestamp: 1_764_480_000_000,
        maxTimestamp: '1764480497503',
        lastOffsetDelta: 499,
        producerId: Long.fromValue('9007199254740993'),
        producerEpoch: 7,
        firstSequence: 2_147_483_000,
        transactional: true,
        partitionLeaderEpoch: 3,
      },
    ];
    for (const fields of cases) {
      const ours = encodeBatch(fields);
      expect(ours).toBeDefined();
      expect(ours!.buf.length).toBe(ours!.offset);
      expect(bytes(ours!)).toBe(bytes(await original(fields)));
      // What the Produce request calls is this encoder (kafkajs' own leaves its buffer a power of two long).
      const installed = require('kafkajs/src/protocol/recordBatch/v0/index.js') as {
        RecordBatch: (fields: BatchFields) => Promise<Encoded>;
      };
      const used = await installed.RecordBatch(fields);
      expect(used.buf.length).toBe(used.offset);
      expect(bytes(used)).toBe(bytes(ours!));
    }
  });

  it('leaves to kafkajs a compressed batch and a batch with a record it encoded itself', () => {
    const ours = finishRecord({
      offsetDelta: 0,
      timestampDelta: 0,
      headers: ENCODED,
      value: encodeRecord(base, null, asBuffer(base.body)),
    });
    const theirs = kafkajsRecord({
      offsetDelta: 1,
      timestampDelta: 0,
      key: null,
      value: asBuffer(base.body),
      headers: {},
    });
    expect(encodeBatch({ records: [ours], compression: 1 })).toBeUndefined();
    expect(encodeBatch({ records: [ours, theirs] })).toBeUndefined();
    expect(encodeBatch({ records: [] })).toBeUndefined();
    expect(encodeBatch({ records: [ours] })).toBeDefined();
  });

  it("fails the send, rather than writing it wrong, if such a record reaches kafkajs' own encoder", () => {
    const original = freshly<typeof kafkajsRecord>('kafkajs/src/protocol/recordBatch/record/v0/index.js');
    const record = new OutgoingRecord(base, 1);
    expect(() => original({ ...record, offsetDelta: 0, timestampDelta: 0 })).toThrow(
      /reached kafkajs' own record encoder/,
    );
    expect(record.size).toBe(record.value.length);
  });
});
