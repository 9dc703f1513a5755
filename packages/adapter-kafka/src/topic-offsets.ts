/**
 * A topic's offsets, read whole. kafkajs answers `fetchTopicOffsets` from its cached metadata: a
 * topic the client looked up before it existed stays cached with no partitions until the cache
 * expires (five minutes), and the call then throws a TypeError ("Cannot destructure property
 * 'partitions' of 'high.pop(...)'"); a cache that misses a partition answers for fewer partitions
 * than the topic has, which would start a consumer lazily on the missing one; and a topic another
 * client created without waiting for its leaders is answered "not the leader". So every answer is
 * checked against the topic's partition count; an answer that is not whole is asked again of a
 * new admin client, whose metadata is read fresh, until the request timeout.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { Admin, Kafka } from 'kafkajs';
import { connectionError, rootCause } from './errors.js';

/** Answers of a cluster that has not settled the topic's leaders yet (kafkajs gives up on them at once). */
const UNSETTLED = new Set(['NOT_LEADER_FOR_PARTITION', 'LEADER_NOT_AVAILABLE', 'UNKNOWN_TOPIC_OR_PARTITION']);

export interface PartitionOffsets {
  readonly partition: number;
  /** The earliest retained offset. */
  readonly low: string;
  /** The next append's offset. */
  readonly high: string;
}

export interface OffsetsSource {
  readonly kafka: Kafka;
  readonly admin: Admin;
  /** How long to keep asking for a whole answer. */
  readonly timeoutMs: number;
}

/** Earliest and next offsets of every partition of `topic` (`partitions` of them, or as many as its metadata says). */
export async function topicOffsets(
  source: OffsetsSource,
  topic: string,
  partitions?: number,
): Promise<PartitionOffsets[]> {
  return whole(source, topic, partitions, (admin) => admin.fetchTopicOffsets(topic));
}

/** The first offset of each partition whose timestamp is at or after `timestamp` (the end where none is). */
export async function topicOffsetsAt(
  source: OffsetsSource,
  topic: string,
  timestamp: number,
  partitions?: number,
): Promise<{ partition: number; offset: string }[]> {
  return whole(source, topic, partitions, (admin) => admin.fetchTopicOffsetsByTimestamp(topic, timestamp));
}

async function whole<T extends { partition: number }>(
  source: OffsetsSource,
  topic: string,
  partitions: number | undefined,
  read: (admin: Admin) => Promise<T[]>,
): Promise<T[]> {
  const expected = partitions ?? (await partitionCount(source.admin, topic));
  const first = await attempt(() => read(source.admin), expected);
  if (first.answer !== undefined) return first.answer;
  const deadline = Date.now() + source.timeoutMs;
  let last = first.problem;
  for (let wait = 50; Date.now() < deadline; wait = Math.min(wait * 2, 1000)) {
    await sleep(wait);
    const fresh = source.kafka.admin({ retry: { retries: 0 } });
    try {
      await fresh.connect();
      const next = await attempt(() => read(fresh), expected);
      if (next.answer !== undefined) return next.answer;
      last = next.problem;
    } finally {
      await fresh.disconnect().catch(() => undefined);
    }
  }
  throw connectionError(`reading the offsets of "${topic}"`, new Error(last));
}

async function attempt<T extends { partition: number }>(
  read: () => Promise<T[]>,
  expected: number,
): Promise<{ answer?: T[]; problem: string }> {
  let answer: T[];
  try {
    answer = await read();
  } catch (error) {
    // The TypeError of a cached topic without partitions.
    if (error instanceof TypeError)
      return { problem: 'the client has no partitions of the topic in its metadata' };
    const type =
      (rootCause(error) as { type?: unknown } | undefined)?.type ?? (error as { type?: unknown }).type;
    if (typeof type === 'string' && UNSETTLED.has(type)) return { problem: `the broker answered ${type}` };
    throw error;
  }
  const seen = new Set(answer.map((p) => p.partition));
  if (seen.size >= expected) return { answer, problem: '' };
  return { problem: `the broker answered for ${seen.size} of ${expected} partition(s)` };
}

/** The topic's partition count, from a metadata request (not the client's cache). */
async function partitionCount(admin: Admin, topic: string): Promise<number> {
  const { topics } = await admin.fetchTopicMetadata({ topics: [topic] });
  return topics.find((t) => t.name === topic)?.partitions.length ?? 0;
}
