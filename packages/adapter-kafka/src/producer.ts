/**
 * Producing: sends are batched per topic by core's `Batcher` (kafkajs does about 3.5k msg/s with
 * one `send()` per message against ~65k msg/s in batches of 500), one request in flight per topic,
 * so messages of one partition are written in the order they were sent. Each message's promise is
 * resolved from the broker's answer for the whole batch (acks=all).
 */
import { Batcher, ConnectionError } from '@omnibus/core';
import type { Producer, RecordMetadata } from 'kafkajs';
import kafkajs from 'kafkajs';
import { publishError, rootCause } from './errors.js';
import type { ResolvedKafkaOptions } from './options.js';
import type { OutgoingRecord } from './record.js';

export interface Produced {
  readonly partition: number;
  readonly offset: number;
}

interface Item {
  readonly record: OutgoingRecord;
  /** Unkeyed records get their partition when their batch is formed (one partition per batch). */
  readonly sticky: boolean;
  readonly partitions: number;
}

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

export class BatchingProducer {
  private readonly batcher: Batcher<Item, Produced>;
  /** Rotates the partition of unkeyed batches. */
  private sticky = Math.floor(Math.random() * 1_000_000);

  constructor(
    private readonly producer: Producer,
    private readonly options: ResolvedKafkaOptions,
  ) {
    this.batcher = new Batcher({
      send: (topic, items) => this.produce(topic, items),
      maxItems: options.batchMaxMessages,
      maxBytes: options.batchMaxBytes,
      lingerMs: options.lingerMs,
    });
  }

  /** Produce requests made so far (batching makes it far fewer than messages). */
  get requests(): number {
    return this.batcher.requests;
  }

  /**
   * Queues a record for `topic` (which has `partitions` partitions). A record without a key
   * (`sticky`) goes to the partition its batch is given.
   */
  send(topic: string, partitions: number, record: OutgoingRecord, sticky: boolean): Promise<Produced> {
    return this.batcher.add(topic, { record, sticky, partitions }, record.size);
  }

  flush(): Promise<void> {
    return this.batcher.flush();
  }

  private produce(topic: string, items: readonly Item[]): Promise<(Produced | Error)[]> {
    const sticky = this.sticky++ % items[items.length - 1]!.partitions;
    for (const item of items) if (item.sticky) item.record.message.partition = sticky;
    return this.request(topic, items);
  }

  /**
   * One request for `items`. A batch the broker refuses as too large goes again one record at a
   * time, so only the oversize record fails, not the valid ones with it.
   */
  private async request(topic: string, items: readonly Item[]): Promise<(Produced | Error)[]> {
    try {
      const result = await this.producer.send({
        topic,
        messages: items.map((i) => i.record.message),
        acks: -1,
        // The broker's wait for the in-sync replicas' acknowledgements.
        timeout: this.options.requestTimeoutMs,
        compression: this.options.compression === 'gzip' ? Compression.GZIP : Compression.None,
      });
      return offsets(items, result);
    } catch (error) {
      if (items.length > 1 && TOO_LARGE.has(String((rootCause(error) as { type?: unknown }).type))) {
        const results: (Produced | Error)[] = [];
        for (const item of items) results.push(...(await this.request(topic, [item])));
        return results;
      }
      const failure = publishError(`sending ${items.length} message(s) to "${topic}"`, error);
      return items.map(() => failure);
    }
  }
}

/** Each record's offset: the partition's base offset plus its index in that partition. */
function offsets(items: readonly Item[], result: readonly RecordMetadata[]): (Produced | Error)[] {
  const base = new Map<number, number>();
  for (const r of result) base.set(r.partition, Number(r.baseOffset ?? r.offset ?? -1));
  const next = new Map<number, number>();
  return items.map(({ record }) => {
    const partition = record.message.partition;
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
