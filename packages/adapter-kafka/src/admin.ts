/**
 * Operations on Kafka (the `depth`, `purge`, `browse`, `deleteSubscription`, `resetGroup` and
 * `lag` capabilities), on the admin API. They work on the adapter's mapping: a queue is a topic
 * read by the group `<prefix>.queue.<name>`, a durable subscription the group
 * `<prefix>.topic.<topic>.<name>`, a log group `<prefix>.log.<log>.<group>` (the names
 * kafka-adapter.ts gives them).
 *
 * - What a queue holds is what its group has not committed: from the committed offset (the
 *   earliest retained one without a commit, or when retention or a purge removed it) to the end.
 * - Moving or deleting a group is refused while it has members; the broker refuses it too
 *   (NON_EMPTY_GROUP, UNKNOWN_MEMBER_ID), so a member joining in between is not overridden.
 */
import { randomBytes } from 'node:crypto';
import {
  type BrowsedMessage,
  DEFAULT_CONTENT_TYPE,
  type LogSpec,
  type PartitionLag,
  type QueueSpec,
  type ResetTarget,
  type TopicSpec,
  ValidationError,
} from '@omnibus/core';
import type { Admin, Kafka, KafkaMessage } from 'kafkajs';
import { connectionError, isConnectionProblem, rootCause } from './errors.js';
import type { ResolvedKafkaOptions } from './options.js';
import { fromRecord } from './record.js';
import { type OffsetsSource, topicOffsets, topicOffsetsAt, withSettledTopic } from './topic-offsets.js';

/** What the operations need of the adapter. */
export interface OperationsContext {
  readonly kafka: Kafka;
  readonly admin: Admin;
  readonly options: ResolvedKafkaOptions;
  /** Creates the topic unless it exists; resolves with its partitions. */
  readonly ensure: (topic: string, partitions: number) => Promise<number>;
  /** Runs an admin request; connection problems also switch the adapter to `reconnecting`. */
  readonly guard: <T>(what: string, operation: () => Promise<T>) => Promise<T>;
}

/** Broker answers that mean "the group has members" (or is joining): the operation must wait for them to leave. */
const GROUP_BUSY = new Set([
  'NON_EMPTY_GROUP',
  'UNKNOWN_MEMBER_ID',
  'ILLEGAL_GENERATION',
  'REBALANCE_IN_PROGRESS',
]);

/** Where a group stands on one partition of its topic. */
interface Span {
  readonly partition: number;
  readonly committed: number | undefined;
  /** The earliest retained offset and the next append's. */
  readonly low: number;
  readonly end: number;
  /** Where the group reads next: the committed offset, not before the earliest retained one. */
  readonly next: number;
}

export class KafkaOperations {
  private readonly offsets: OffsetsSource;

  constructor(private readonly ctx: OperationsContext) {
    this.offsets = { kafka: ctx.kafka, admin: ctx.admin, timeoutMs: ctx.options.requestTimeoutMs };
  }

  async depth(queue: QueueSpec): Promise<number> {
    const what = `reading the depth of "${queue.name}"`;
    return this.ctx.guard(what, async () => {
      if (!(await this.exists(queue.name))) return 0;
      return total(await this.spans(this.queueGroup(queue.name), queue.name));
    });
  }

  async purge(queue: QueueSpec): Promise<number> {
    const what = `purging "${queue.name}"`;
    return this.ctx.guard(what, async () => {
      if (!(await this.exists(queue.name))) return 0;
      const spans = await this.spans(this.queueGroup(queue.name), queue.name);
      // Up to the ends read now: what is sent from here on stays.
      const partitions = spans
        .filter((s) => s.end > s.low)
        .map((s) => ({ partition: s.partition, offset: String(s.end) }));
      if (partitions.length > 0) {
        // kafkajs finds each partition's leader in its cached metadata, and reads the topic's offsets
        // again itself: both fail on a topic whose leaders were not settled when it was cached.
        await this.request(what, () =>
          withSettledTopic(this.offsets, what, (admin) =>
            admin.deleteTopicRecords({ topic: queue.name, partitions }),
          ),
        );
      }
      return total(spans);
    });
  }

  /**
   * Reads the queue from where its group stands with a group of its own that never commits and is
   * deleted after: nothing of the queue's group moves, no delivery is counted.
   */
  async browse(queue: QueueSpec, limit: number): Promise<BrowsedMessage[]> {
    const what = `browsing "${queue.name}"`;
    return this.ctx.guard(what, async () => {
      if (limit <= 0 || !(await this.exists(queue.name))) return [];
      const spans = (await this.spans(this.queueGroup(queue.name), queue.name)).filter((s) => s.end > s.next);
      if (spans.length === 0) return [];
      const found = await this.fetch(queue.name, spans, limit);
      // One partition is in order already; across partitions, by send time (Kafka keeps no order among them).
      return found
        .sort((a, b) => a.timestamp - b.timestamp || a.partition - b.partition || a.offset - b.offset)
        .slice(0, limit)
        .map((f) => f.message);
    });
  }

  async deleteSubscription(topic: TopicSpec, durable: string): Promise<boolean> {
    const groupId = `${this.ctx.options.groupPrefix}.topic.${topic.name}.${durable}`;
    const what = `deleting the durable subscription "${durable}" of "${topic.name}"`;
    return this.ctx.guard(what, async () => {
      const group = await this.assertIdle(groupId, `durable subscription "${durable}" of "${topic.name}"`);
      if (group === 'dead') {
        // A group without members may still have committed offsets only (it then shows as Empty,
        // not Dead); Dead means there is nothing to delete.
        return false;
      }
      try {
        await this.ctx.admin.deleteGroups([groupId]);
      } catch (error) {
        const type = errorType(error);
        if (type === 'GROUP_ID_NOT_FOUND') return false;
        if (type !== undefined && GROUP_BUSY.has(type))
          throw busy(`durable subscription "${durable}" of "${topic.name}"`);
        throw error;
      }
      return true;
    });
  }

  async resetGroup(log: LogSpec, group: string, to: ResetTarget): Promise<void> {
    const groupId = this.logGroup(log.name, group);
    const what = `resetting group "${group}" of "${log.name}"`;
    await this.ctx.ensure(log.name, log.partitions);
    await this.ctx.guard(what, async () => {
      const subject = `consumer group "${group}" of "${log.name}"`;
      await this.assertIdle(groupId, subject);
      const partitions = await this.targets(log.name, to);
      try {
        await this.ctx.admin.setOffsets({ groupId, topic: log.name, partitions });
      } catch (error) {
        const type = errorType(error);
        if (type !== undefined && GROUP_BUSY.has(type)) throw busy(subject);
        throw error;
      }
    });
  }

  async groupLag(log: LogSpec, group: string): Promise<PartitionLag[]> {
    const groupId = this.logGroup(log.name, group);
    await this.ctx.ensure(log.name, log.partitions);
    return this.ctx.guard(`reading the lag of group "${group}" of "${log.name}"`, async () =>
      (await this.spans(groupId, log.name)).map(({ partition, committed, end, next }) => ({
        partition,
        committed,
        end,
        lag: end - next,
      })),
    );
  }

  private queueGroup(queue: string): string {
    return `${this.ctx.options.groupPrefix}.queue.${queue}`;
  }

  private logGroup(log: string, group: string): string {
    return `${this.ctx.options.groupPrefix}.log.${log}.${group}`;
  }

  /** Whether the topic exists, asked without creating it. */
  private async exists(topic: string): Promise<boolean> {
    return (await this.ctx.admin.listTopics()).includes(topic);
  }

  private async spans(groupId: string, topic: string): Promise<Span[]> {
    const [offsets, [committed]] = await Promise.all([
      topicOffsets(this.offsets, topic),
      this.ctx.admin.fetchOffsets({ groupId, topics: [topic] }),
    ]);
    const commits = new Map(
      (committed?.partitions ?? [])
        .filter((p) => Number(p.offset) >= 0)
        .map((p) => [p.partition, Number(p.offset)] as const),
    );
    return offsets
      .map(({ partition, low, high }) => {
        const at = commits.get(partition);
        const end = Number(high);
        const first = Number(low);
        return {
          partition,
          committed: at,
          low: first,
          end,
          next: Math.min(end, Math.max(at ?? first, first)),
        };
      })
      .sort((a, b) => a.partition - b.partition);
  }

  /** The offsets `to` means on each partition of `topic`. */
  private async targets(topic: string, to: ResetTarget): Promise<{ partition: number; offset: string }[]> {
    switch (to.kind) {
      case 'earliest':
      case 'latest':
        return (await topicOffsets(this.offsets, topic)).map(({ partition, low, high }) => ({
          partition,
          offset: to.kind === 'earliest' ? low : high,
        }));
      case 'timestamp':
        // The first offset whose CreateTime is at or after the time; the end where none is.
        return topicOffsetsAt(this.offsets, topic, to.timestamp);
    }
  }

  /** Refuses when the group has members; resolves with `dead` when it does not exist. */
  private async assertIdle(groupId: string, subject: string): Promise<'dead' | 'idle'> {
    const {
      groups: [group],
    } = await this.ctx.admin.describeGroups([groupId]);
    if (group !== undefined && group.members.length > 0) throw busy(subject, group.members.length);
    return group === undefined || group.state === 'Dead' ? 'dead' : 'idle';
  }

  /** Reads from `spans`' `next` offsets with a throwaway group (never committed, deleted after). */
  private async fetch(topic: string, spans: readonly Span[], limit: number): Promise<Found[]> {
    const { kafka, admin, options } = this.ctx;
    const groupId = `${options.groupPrefix}.browse.${topic}.${randomSuffix()}`;
    // Where each partition starts, set before anyone joins: the group reads from there.
    await admin.setOffsets({
      groupId,
      topic,
      partitions: spans.map((s) => ({ partition: s.partition, offset: String(s.next) })),
    });
    const wanted = new Map(spans.map((s) => [s.partition, Math.min(s.end, s.next + limit)]));
    const found: Found[] = [];
    const consumer = kafka.consumer({
      groupId,
      sessionTimeout: options.sessionTimeoutMs,
      heartbeatInterval: options.heartbeatIntervalMs,
      allowAutoTopicCreation: false,
      retry: { retries: 2 },
    });
    try {
      await consumer.connect();
      await consumer.subscribe({ topic, fromBeginning: true });
      const done = new Promise<void>((resolve, reject) => {
        const finished = () => [...wanted.values()].every((v) => v <= 0);
        consumer.on(consumer.events.CRASH, (event) => reject(event.payload.error));
        void consumer
          .run({
            autoCommit: false,
            eachBatch: async ({ batch }) => {
              const until = wanted.get(batch.partition);
              if (until === undefined || until <= 0) return;
              for (const message of batch.messages) {
                const offset = Number(message.offset);
                if (offset >= until) break;
                found.push({
                  partition: batch.partition,
                  offset,
                  timestamp: Number(message.timestamp),
                  message: browsed(topic, batch.partition, offset, message),
                });
              }
              const last = Number(batch.lastOffset());
              if (last + 1 >= until) wanted.set(batch.partition, 0);
              if (finished()) resolve();
            },
          })
          .catch(reject);
      });
      await withTimeout(done, options.requestTimeoutMs + options.sessionTimeoutMs, `browsing "${topic}"`);
    } finally {
      await consumer.disconnect().catch(() => undefined);
      await admin.deleteGroups([groupId]).catch(() => undefined);
    }
    return found;
  }

  private async request<T>(what: string, operation: () => Promise<T>): Promise<T> {
    try {
      return await operation();
    } catch (error) {
      if (isConnectionProblem(error)) throw error;
      throw connectionError(what, error, false);
    }
  }
}

interface Found {
  readonly partition: number;
  readonly offset: number;
  readonly timestamp: number;
  readonly message: BrowsedMessage;
}

/** A record as a delivery of the queue would show it (see consume.ts), without settlement. */
function browsed(topic: string, partition: number, offset: number, message: KafkaMessage): BrowsedMessage {
  return {
    ...fromRecord(message),
    id: `${topic}-${partition}-${offset}`,
    contentType: DEFAULT_CONTENT_TYPE,
    raw: { topic, partition, offset, message },
  };
}

function total(spans: readonly Span[]): number {
  return spans.reduce((sum, s) => sum + (s.end - s.next), 0);
}

function busy(subject: string, members?: number): ValidationError {
  const who = members === undefined ? 'members' : `${members} member(s)`;
  return new ValidationError(`${subject} has ${who} attached; close them first`, [], { adapter: 'kafka' });
}

function errorType(error: unknown): string | undefined {
  for (const candidate of [error, rootCause(error)]) {
    const type = (candidate as { type?: unknown } | null)?.type;
    if (typeof type === 'string') return type;
  }
  // deleteGroups reports per group: `groups: [{ groupId, error }]`.
  const groups = (error as { groups?: { error?: { type?: unknown } }[] } | null)?.groups;
  const type = groups?.[0]?.error?.type;
  return typeof type === 'string' ? type : undefined;
}

function randomSuffix(): string {
  return randomBytes(6).toString('hex');
}

async function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(connectionError(what, new Error(`no answer within ${ms} ms`))), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}
