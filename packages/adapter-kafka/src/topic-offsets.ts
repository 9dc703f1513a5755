/**
 * A topic's offsets, read whole, and admin operations on a topic whose metadata may not have
 * settled (`withSettledTopic`). kafkajs answers `fetchTopicOffsets` from its cached metadata: a
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
  return withSettledTopic(source, `reading the offsets of "${topic}"`, async (admin) => {
    // A metadata request too may not know a topic created a moment ago (UNKNOWN_TOPIC_OR_PARTITION).
    const expected = partitions ?? (await partitionCount(admin, topic));
    const answer = await read(admin);
    const seen = new Set(answer.map((p) => p.partition)).size;
    if (seen < expected) throw new Unsettled(`the broker answered for ${seen} of ${expected} partition(s)`);
    return answer;
  });
}

/** An answer that is not whole yet: the topic's metadata has not settled. */
class Unsettled extends Error {}

/**
 * Runs `operation` on the source's admin client and, while it fails only because the topic's
 * metadata has not settled (a topic just created, its leaders not elected, or cached without them:
 * kafkajs answers from its cache and gives up on these at once), again on a new admin client with
 * fresh metadata, backing off, until the request timeout. Any other error is thrown as it is.
 */
export async function withSettledTopic<T>(
  source: OffsetsSource,
  what: string,
  operation: (admin: Admin) => Promise<T>,
): Promise<T> {
  const deadline = Date.now() + source.timeoutMs;
  let last: string;
  try {
    return await operation(source.admin);
  } catch (error) {
    last = unsettled(error) ?? rethrow(error);
  }
  // Not settled: again on a new client each time (its metadata read fresh), backing off.
  for (let wait = 50; Date.now() < deadline; wait = Math.min(wait * 2, 1000)) {
    await sleep(wait);
    const admin = source.kafka.admin({ retry: { retries: 0 } });
    try {
      await admin.connect();
      return await operation(admin);
    } catch (error) {
      last = unsettled(error) ?? rethrow(error);
    } finally {
      await admin.disconnect().catch(() => undefined);
    }
  }
  throw connectionError(what, new Error(last));
}

function rethrow(error: unknown): never {
  throw error;
}

/** Why `error` means the topic's metadata has not settled yet, or undefined when it means something else. */
function unsettled(error: unknown): string | undefined {
  if (error instanceof Unsettled) return error.message;
  // kafkajs on a topic cached without partitions ("Cannot destructure property 'partitions' of 'high.pop(...)'").
  if (error instanceof TypeError) return 'the client has no partitions of the topic in its metadata';
  const name = (error as { name?: unknown }).name;
  if (name === 'KafkaJSBrokerNotFound' || name === 'KafkaJSMetadataNotLoaded')
    return 'the client knows no leader for a partition of the topic';
  // deleteTopicRecords: one error per partition; unsettled only if each of them is.
  const parts = (error as { partitions?: { error?: unknown }[] }).partitions;
  if (name === 'KafkaJSDeleteTopicRecordsError' && Array.isArray(parts) && parts.length > 0) {
    const reasons = parts.map((p) => (p.error === undefined ? undefined : unsettled(p.error)));
    return reasons.every((r) => r !== undefined) ? reasons[0] : undefined;
  }
  const type =
    (rootCause(error) as { type?: unknown } | undefined)?.type ?? (error as { type?: unknown }).type;
  if (typeof type === 'string' && UNSETTLED.has(type)) return `the broker answered ${type}`;
  return undefined;
}

/** The topic's partition count, from a metadata request (not the client's cache). */
async function partitionCount(admin: Admin, topic: string): Promise<number> {
  const { topics } = await admin.fetchTopicMetadata({ topics: [topic] });
  return topics.find((t) => t.name === topic)?.partitions.length ?? 0;
}
