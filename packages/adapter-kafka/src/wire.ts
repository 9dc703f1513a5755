/**
 * Omnibus records encoded in one buffer each, for kafkajs' Produce request.
 *
 * kafkajs encodes every record, and every header of it, in an `Encoder` of its own: a zero-filled
 * 512-byte buffer each, grown and copied for a 1 KiB body, and a `Buffer` per varint. With the
 * envelope's headers that was about half the CPU of a send (docs/benchmarks.md, "kafka"). Here an
 * outgoing record's key, value and headers are written once, when the record is made, into one
 * buffer, and kafkajs' record encoder is given a replacement that, for such a record, only writes
 * the four fields that depend on the batch (length, attributes, timestamp and offset deltas) in
 * front of it — in place, so the record's bytes are copied no more than kafkajs copies them itself.
 * Any other record (another kafkajs user in the process) goes to kafkajs' own encoder.
 *
 * The bytes are the ones kafkajs would write for the same record (the same Kafka record v2 format,
 * the same headers: a test compares them), so readers — this adapter's and foreign ones — see no
 * difference. The replacement is installed into kafkajs' module cache before its Produce request
 * module is first loaded (kafkajs loads it on the first produce), and only when the kafkajs found
 * by `require` is the one this adapter imports and its encoder still writes what this one writes;
 * otherwise records carry their headers as kafkajs messages do and kafkajs encodes them (so an
 * application that sent with kafkajs before importing this adapter gets correct, slower records).
 * The batch fields are written into the record's own buffer, so one record must not appear twice
 * in one request (the batcher sends each once; a retried request writes them again, identically).
 *
 * A batch of such records (uncompressed) is written the same way: kafkajs' `RecordBatch` grows a
 * zero-filled buffer by doubling while it appends the records, copies the result twice more and
 * checksums it a byte at a time in JavaScript; `encodeBatch` sizes one buffer exactly, copies each
 * record into it once and checksums it with `@node-rs/crc32` (hardware CRC-32C, kafkajs' own
 * function where that package cannot load). Before its first batch it encodes a sample batch both
 * ways and keeps to kafkajs' whenever the bytes differ.
 */
import { createRequire } from 'node:module';
import { DEFAULT_CONTENT_TYPE, HEADER, type OutgoingMessage } from '@omnibus/core';
import kafkajs from 'kafkajs';

/**
 * The `headers` of a record made by `encodeRecord`: its `value` is then its key, value and headers
 * encoded, behind `RESERVED` free bytes. A marker compared by identity, never a bag kafkajs reads —
 * and no extra property: kafkajs copies every record with `{ ...record, offsetDelta, timestampDelta }`,
 * and that copy costs more with each property (a symbol most of all).
 */
export const ENCODED: Record<string, string> = new Proxy(Object.freeze({}), {
  // kafkajs' own encoder lists a record's headers: should one of these records ever reach it (its
  // module cache reset behind the adapter's back), the send fails instead of writing it wrong.
  ownKeys() {
    throw new Error(
      "a record the Kafka adapter encoded reached kafkajs' own record encoder (was kafkajs' module cache reset?); not sent",
    );
  },
}) as Record<string, string>;

/** Room for the fields written per batch: length (≤ 5), attributes (1), timestamp delta (≤ 10), offset delta (≤ 5). */
const RESERVED = 21;

interface KafkajsEncoder {
  buf: Buffer;
  offset: number;
}
type RecordEncoder = (record: Record<string, unknown>) => KafkajsEncoder;

const RECORD_MODULE = 'kafkajs/src/protocol/recordBatch/record/v0/index.js';
const ENCODER_MODULE = 'kafkajs/src/protocol/encoder.js';
const PRODUCE_MODULE = 'kafkajs/src/protocol/requests/produce/v3/request.js';
const BATCH_MODULE = 'kafkajs/src/protocol/recordBatch/v0/index.js';
const LONG_MODULE = 'kafkajs/src/utils/long.js';
const CRC_MODULE = 'kafkajs/src/protocol/recordBatch/crc32C/index.js';

let encoderPrototype: object | undefined;
/** The prototype of the records `finishRecord` makes (kafkajs' `Encoder`'s, one step removed): how `encodeBatch` knows them. */
let finishedPrototype: object | undefined;
let installed: boolean | undefined;

/**
 * Puts the record encoder in place (once per process); true when kafkajs will use it, so records
 * may be made with `encodeRecord` and no header bag.
 */
export function installRecordEncoder(): boolean {
  if (installed === undefined) installed = install();
  return installed;
}

function install(): boolean {
  try {
    const require = createRequire(import.meta.url);
    // A bundled or second copy of kafkajs would not see the module cache this one is in.
    if (require('kafkajs') !== kafkajs) return false;
    const cache = require.cache;
    const recordPath = require.resolve(RECORD_MODULE);
    // Loaded already: the Produce request holds kafkajs' own encoder.
    if (cache[require.resolve(PRODUCE_MODULE)] !== undefined) return false;
    const original = require(recordPath) as RecordEncoder;
    if ((original as { omnibus?: boolean }).omnibus === true) return true;
    encoderPrototype = (require(ENCODER_MODULE) as { prototype: object }).prototype;
    finishedPrototype = Object.create(encoderPrototype) as object;
    const module = cache[recordPath];
    if (module === undefined || module.exports !== original) return false;
    const replacement: RecordEncoder & { omnibus?: boolean } = (record) =>
      record.headers === ENCODED ? finishRecord(record) : original(record);
    replacement.omnibus = true;
    if (!sameBytes(original)) return false;
    module.exports = replacement;
    try {
      installBatchEncoder(require);
    } catch {
      // kafkajs' batch encoder stays: it writes these records as well, only slower.
    }
    return true;
  } catch {
    return false;
  }
}

/** This encoder against kafkajs' on a record with every kind of field, before anything relies on it. */
function sameBytes(original: RecordEncoder): boolean {
  const message: OutgoingMessage = {
    id: 'id-é',
    body: Buffer.from('value'),
    headers: { a: 'b', 'ü-name': 'wert ✓' },
    contentType: 'text/plain',
    key: 'key',
    subject: 'a.b',
    timestamp: 1,
  };
  const bag = {
    a: 'b',
    'ü-name': 'wert ✓',
    [HEADER.id]: 'id-é',
    [HEADER.subject]: 'a.b',
    [HEADER.contentType]: 'text/plain',
  };
  for (const [offsetDelta, timestampDelta] of [
    [0, 0],
    [499, 1_764_000_000_123],
    [70_000, -5],
  ] as const) {
    const fields = { offsetDelta, timestampDelta };
    const theirs = original({ ...fields, key: 'key', value: message.body, headers: bag });
    const ours = finishRecord({
      ...fields,
      headers: ENCODED,
      value: encodeRecord(message, 'key', message.body as Buffer),
    });
    if (!theirs.buf.subarray(0, theirs.offset).equals(ours.buf.subarray(0, ours.offset))) return false;
  }
  return true;
}

/** The batch-dependent fields in front of the record's encoded rest; kafkajs copies the result. */
export function finishRecord(record: Record<string, unknown>): KafkajsEncoder {
  const tail = record.value as Buffer;
  const timestampDelta = (record.timestampDelta as number | undefined) ?? 0;
  const offsetDelta = (record.offsetDelta as number | undefined) ?? 0;
  const timestampSize = varintSize(timestampDelta);
  const offsetSize = varintSize(offsetDelta);
  const body = 1 + timestampSize + offsetSize + tail.length - RESERVED;
  const start = RESERVED - varintSize(body) - 1 - timestampSize - offsetSize;
  let at = writeVarint(tail, start, body);
  tail[at++] = 0; // attributes
  at = writeVarint(tail, at, timestampDelta);
  writeVarint(tail, at, offsetDelta);
  const encoder = Object.create(finishedPrototype!) as KafkajsEncoder;
  encoder.buf = tail.subarray(start);
  encoder.offset = tail.length - start;
  return encoder;
}

/** What kafkajs' Produce request hands `RecordBatch` (recordBatch/v0/index.js). */
export interface BatchFields {
  compression?: number;
  firstOffset?: unknown;
  firstTimestamp?: unknown;
  maxTimestamp?: unknown;
  partitionLeaderEpoch?: number;
  lastOffsetDelta?: number;
  transactional?: boolean;
  producerId?: unknown;
  producerEpoch?: number;
  firstSequence?: number;
  records?: readonly unknown[];
}
type BatchEncoder = (fields: BatchFields) => Promise<KafkajsEncoder>;
type Checksum = (bytes: Buffer) => number;
interface Int64 {
  getHighBits(): number;
  getLowBits(): number;
}
type ToInt64 = (value: unknown) => Int64;

const MAGIC = 2;
const TRANSACTIONAL = 16;
/** First offset (8), length (4), partition leader epoch (4), magic (1), CRC (4): what the checksum does not cover. */
const BATCH_HEAD = 21;
/** Attributes (2), last offset delta (4), first and max timestamp (8 + 8), producer id (8) and epoch (2), first sequence (4), record count (4). */
const BATCH_FIELDS = 40;

let batchChecksum: Checksum | undefined;
let toInt64: ToInt64 | undefined;

/** Replaces kafkajs' `RecordBatch` with one that writes batches of `finishRecord`'s records itself. */
function installBatchEncoder(require: NodeJS.Require): void {
  const module = require(BATCH_MODULE) as { RecordBatch: BatchEncoder };
  const original = module.RecordBatch;
  const Long = require(LONG_MODULE) as { fromValue: ToInt64 };
  toInt64 = (value) => Long.fromValue(value);
  const theirs = require(CRC_MODULE) as Checksum;
  batchChecksum = theirs;
  try {
    const { crc32c } = require('@node-rs/crc32') as { crc32c: Checksum };
    const sample = Buffer.from('omnibus: 123456789 ✓');
    if (crc32c(sample) === theirs(sample)) batchChecksum = crc32c;
  } catch {
    // No build of @node-rs/crc32 for this platform: kafkajs' checksum.
  }
  let verified: Promise<boolean> | undefined;
  module.RecordBatch = async (fields) => {
    verified ??= sameBatch(original);
    if (await verified) {
      const ours = encodeBatch(fields);
      if (ours !== undefined) return ours;
    }
    return original(fields);
  };
}

/** This batch encoder against kafkajs' on a batch of two records, before any batch relies on it. */
async function sameBatch(original: BatchEncoder): Promise<boolean> {
  try {
    const records = [0, 1].map((offsetDelta) =>
      finishRecord({
        offsetDelta,
        timestampDelta: offsetDelta * 70_000,
        headers: ENCODED,
        value: encodeRecord(
          {
            id: `id-${offsetDelta}`,
            body: Buffer.from('value'),
            headers: { a: 'ü' },
            contentType: DEFAULT_CONTENT_TYPE,
            timestamp: 1,
          },
          offsetDelta === 0 ? null : 'key',
          Buffer.from('value'),
        ),
      }),
    );
    const fields: BatchFields = {
      compression: 0,
      firstTimestamp: '1764480000000',
      maxTimestamp: '1764480070000',
      producerId: toInt64!(4_294_967_301),
      producerEpoch: 3,
      firstSequence: 17,
      transactional: true,
      lastOffsetDelta: 1,
      records,
    };
    const theirs = await original(fields);
    const ours = encodeBatch(fields);
    return (
      ours !== undefined && theirs.buf.subarray(0, theirs.offset).equals(ours.buf.subarray(0, ours.offset))
    );
  } catch {
    return false;
  }
}

/**
 * The batch kafkajs' `RecordBatch` writes for `fields`, in one buffer of the exact size — or
 * undefined when it is not an uncompressed batch of `finishRecord`'s records (kafkajs writes those).
 */
export function encodeBatch(fields: BatchFields): KafkajsEncoder | undefined {
  const records = fields.records ?? [];
  if ((fields.compression ?? 0) !== 0 || records.length === 0 || finishedPrototype === undefined)
    return undefined;
  let size = BATCH_HEAD + BATCH_FIELDS;
  for (let i = 0; i < records.length; i++) {
    const record = records[i] as KafkajsEncoder;
    if (Object.getPrototypeOf(record) !== finishedPrototype) return undefined;
    size += record.offset;
  }
  const out = Buffer.allocUnsafe(size);
  writeInt64(out, 0, fields.firstOffset ?? 0);
  out.writeInt32BE(size - 12, 8);
  out.writeInt32BE(fields.partitionLeaderEpoch ?? 0, 12);
  out[16] = MAGIC;
  let at = BATCH_HEAD;
  at = out.writeInt16BE(fields.transactional === true ? TRANSACTIONAL : 0, at);
  at = out.writeInt32BE(fields.lastOffsetDelta ?? 0, at);
  const now = Date.now();
  at = writeInt64(out, at, fields.firstTimestamp ?? now);
  at = writeInt64(out, at, fields.maxTimestamp ?? now);
  at = writeInt64(out, at, fields.producerId ?? -1);
  at = out.writeInt16BE(fields.producerEpoch ?? 0, at);
  at = out.writeInt32BE(fields.firstSequence ?? 0, at);
  at = out.writeInt32BE(records.length, at);
  for (let i = 0; i < records.length; i++) {
    const record = records[i] as KafkajsEncoder;
    at += record.buf.copy(out, at, 0, record.offset);
  }
  out.writeUInt32BE(batchChecksum!(out.subarray(BATCH_HEAD)), 17);
  const encoder = Object.create(encoderPrototype!) as KafkajsEncoder;
  encoder.buf = out;
  encoder.offset = size;
  return encoder;
}

/** An int64 as kafkajs writes one (from a number, a numeric string or a kafkajs `Long`). */
function writeInt64(out: Buffer, at: number, value: unknown): number {
  const long = toInt64!(value);
  out.writeInt32BE(long.getHighBits(), at);
  return out.writeInt32BE(long.getLowBits(), at + 4);
}

/** A header name or value: its length as a varint, then its UTF-8 bytes, ready to copy. */
function encodedString(text: string): Buffer {
  const length = Buffer.byteLength(text);
  const out = Buffer.allocUnsafe(varintSize(length) + length);
  out.write(text, writeVarint(out, 0, length));
  return out;
}

const ID_NAME = encodedString(HEADER.id);
const SUBJECT_NAME = encodedString(HEADER.subject);
/** The content-type header, name and value, per content type (a handful per application). */
const contentTypes = new Map<string, Buffer>();

function contentTypeHeader(contentType: string): Buffer {
  let header = contentTypes.get(contentType);
  if (header === undefined) {
    header = Buffer.concat([encodedString(HEADER.contentType), encodedString(contentType)]);
    if (contentTypes.size < 64) contentTypes.set(contentType, header);
  }
  return header;
}

/**
 * The record's key, value and headers as Kafka writes them, behind `RESERVED` free bytes. The
 * headers are those `toHeaders(message, { native: { key, timestamp, contentType: 'unless-default' } })`
 * gives (record.ts): the application's and core's control headers, `HEADER.id`,
 * `HEADER.subject` when there is a subject, `HEADER.contentType` unless JSON.
 */
export function encodeRecord(message: OutgoingMessage, key: string | null, value: Buffer): Buffer {
  const headers = message.headers;
  const subject = message.subject;
  const typeHeader =
    message.contentType === DEFAULT_CONTENT_TYPE ? undefined : contentTypeHeader(message.contentType);
  let count = 1;
  let size = 0;
  for (const name in headers) {
    if (isEnvelope(name, subject, typeHeader)) continue;
    const nameLength = Buffer.byteLength(name);
    const valueLength = Buffer.byteLength(headers[name]!);
    size += varintSize(nameLength) + nameLength + varintSize(valueLength) + valueLength;
    count++;
  }
  const idLength = Buffer.byteLength(message.id);
  size += ID_NAME.length + varintSize(idLength) + idLength;
  let subjectLength = 0;
  if (subject !== undefined) {
    subjectLength = Buffer.byteLength(subject);
    size += SUBJECT_NAME.length + varintSize(subjectLength) + subjectLength;
    count++;
  }
  if (typeHeader !== undefined) {
    size += typeHeader.length;
    count++;
  }
  const keyLength = key === null ? -1 : Buffer.byteLength(key);
  const valueLength = value.length;
  size +=
    varintSize(keyLength) +
    Math.max(keyLength, 0) +
    varintSize(valueLength) +
    valueLength +
    varintSize(count);

  const out = Buffer.allocUnsafe(RESERVED + size);
  let at = writeVarint(out, RESERVED, keyLength);
  if (key !== null) at += out.write(key, at);
  at = writeVarint(out, at, valueLength);
  at += value.copy(out, at);
  at = writeVarint(out, at, count);
  for (const name in headers) {
    if (isEnvelope(name, subject, typeHeader)) continue;
    at = writeString(out, at, name);
    at = writeString(out, at, headers[name]!);
  }
  at += ID_NAME.copy(out, at);
  at = writeString(out, at, message.id, idLength);
  if (subject !== undefined) {
    at += SUBJECT_NAME.copy(out, at);
    at = writeString(out, at, subject, subjectLength);
  }
  if (typeHeader !== undefined) typeHeader.copy(out, at);
  return out;
}

/** An application header `toHeaders` would overwrite with an envelope field: written once, as that field. */
function isEnvelope(name: string, subject: string | undefined, typeHeader: Buffer | undefined): boolean {
  return (
    name === HEADER.id ||
    (subject !== undefined && name === HEADER.subject) ||
    (typeHeader !== undefined && name === HEADER.contentType)
  );
}

function writeString(out: Buffer, at: number, text: string, length = Buffer.byteLength(text)): number {
  const start = writeVarint(out, at, length);
  return start + out.write(text, start);
}

/** Kafka's zigzag varint (varlong too: exact for |value| < 2^52, which timestamps and sizes are). */
function writeVarint(out: Buffer, at: number, value: number): number {
  let v = value >= 0 ? value * 2 : -value * 2 - 1;
  if (v < 0x4000) {
    if (v < 0x80) {
      out[at] = v;
      return at + 1;
    }
    out[at] = (v & 0x7f) | 0x80;
    out[at + 1] = v >>> 7;
    return at + 2;
  }
  while (v >= 0x80) {
    out[at++] = (v % 0x80) | 0x80;
    v = Math.floor(v / 0x80);
  }
  out[at++] = v;
  return at;
}

function varintSize(value: number): number {
  let v = value >= 0 ? value * 2 : -value * 2 - 1;
  if (v < 0x80) return 1;
  if (v < 0x4000) return 2;
  let size = 1;
  while (v >= 0x80) {
    v = Math.floor(v / 0x80);
    size++;
  }
  return size;
}
