/**
 * Producing: sends are batched per topic by core's `Batcher` (kafkajs does about 3.5k msg/s with
 * one `send()` per message against ~65k msg/s in batches of 500), one request in flight per topic,
 * so messages of one partition are written in the order they were sent. Each message's promise is
 * resolved from the broker's answer for the whole batch (acks=all).
 */
import { Batcher, ConnectionError, type LogPosition } from '@omnibus/core';
import type { Producer, RecordMetadata } from 'kafkajs';
import kafkajs from 'kafkajs';
import { publishError, rootCause } from './errors.js';
import type { ResolvedKafkaOptions } from './options.js';
import { type OutgoingRecord, UNASSIGNED } from './record.js';

const { CompressionTypes: Compression, Partitioners } = kafkajs;
const keyed = Partitioners.DefaultPartitioner();
const TOO_LARGE = new Set(['MESSAGE_TOO_LARGE', 'RECORD_LIST_TOO_LARGE']);
const metadataCache = new Map<number, { partitionId: number; leader: number }[]>();

/** The partition Kafka's Java client would pick for `key` (murmur2), so other clients agree. */
export function partitionForKey(key: string, partitions: number): number {
  let metadata = metadataCache.get(partitions);
  if (metadata === undefined) {
    metadata = Array.from({ length: partitions }, (_, partitionId) => ({ partitionId, leader: 0 }));
    metadataCache.set(partitions, metadata);
  }
  return keyed({
    topic: '',
    partitionMetadata: metadata as never,
    message: { key, value: null },
  });
}

/**
 * Core's batcher, sending each batch of a topic's records in one Produce request (acks=all).
 * `lost` hears once per batch that failed (or lost a partition's answer) for want of a connection.
 */
export function recordBatcher(
  producer: Producer,
  options: ResolvedKafkaOptions,
  lost: (error: ConnectionError) => void,
  /** The topic's partitions (known: a record is made once they are). */
  partitionsOf: (topic: string) => number,
): Batcher<OutgoingRecord, LogPosition> {
  const compression = options.compression === 'gzip' ? Compression.GZIP : Compression.None;
  /** Rotates the partition of unkeyed batches. */
  let sticky = Math.floor(Math.random() * 1_000_000);

  /**
   * One request for `records`. A batch the broker refuses as too large goes again one record at a
   * time, so only the oversize record fails, not the valid ones with it.
   */
  const request = async (
    topic: string,
    records: readonly OutgoingRecord[],
  ): Promise<(LogPosition | Error)[]> => {
    try {
      const result = await producer.send({
        topic,
        // Each record is its kafkajs message (record.ts).
        messages: records as OutgoingRecord[],
        acks: -1,
        // The broker's wait for the in-sync replicas' acknowledgements.
        timeout: options.requestTimeoutMs,
        compression,
      });
      const positions = offsets(records, result);
      const unanswered = positions.find((p) => p instanceof ConnectionError);
      if (unanswered !== undefined) lost(unanswered as ConnectionError);
      return positions;
    } catch (error) {
      if (records.length > 1 && TOO_LARGE.has(String((rootCause(error) as { type?: unknown }).type))) {
        const results: (LogPosition | Error)[] = [];
        for (const record of records) results.push(...(await request(topic, [record])));
        return results;
      }
      const failure = publishError(`sending ${records.length} message(s) to "${topic}"`, error);
      if (failure instanceof ConnectionError && failure.retriable) lost(failure);
      return records.map(() => failure);
    }
  };

  return new Batcher({
    send: (topic, records) => {
      // Unkeyed records get their partition when their batch is formed: one partition per batch.
      const partition = sticky++ % partitionsOf(topic);
      for (const record of records) if (record.partition === UNASSIGNED) record.partition = partition;
      return request(topic, records);
    },
    maxItems: options.batchMaxMessages,
    maxBytes: options.batchMaxBytes,
    lingerMs: options.lingerMs,
  });
}

/** Each record's offset: the partition's base offset plus its index in that partition. */
function offsets(
  records: readonly OutgoingRecord[],
  result: readonly RecordMetadata[],
): (LogPosition | Error)[] {
  const base = new Map<number, number>();
  for (const r of result) base.set(r.partition, Number(r.baseOffset ?? r.offset ?? -1));
  const next = new Map<number, number>();
  return records.map((record) => {
    const partition = record.partition;
    const start = base.get(partition);
    if (start === undefined || start < 0) {
      // kafkajs can resolve a batch without an answer for a partition whose leader moved during the
      // request (its retry skips brokers that already answered): the record may not be written.
      return new ConnectionError(
        `sending to partition ${partition}: no acknowledgement for it (its leader moved during the request); sending again`,
        { adapter: 'kafka', retriable: true },
      );
    }
    const index = next.get(partition) ?? 0;
    next.set(partition, index + 1);
    return { partition, offset: start + index };
  });
}
