/**
 * One kafkajs consumer (always a group member) per queue consumer, topic subscription or log reader.
 *
 * - Deliveries are handed to core without waiting for their handlers; at most `prefetch` are
 *   outstanding. When that many are, `eachBatch` waits for room (heartbeating, so a long handler
 *   does not cost the membership) and the rest of the batch stays unresolved, to be fetched again.
 * - Offsets are committed by us (autoCommit off): per partition the highest *contiguous* finished
 *   offset (core's `OffsetTracker`), so a commit never passes a message whose handler has not
 *   finished, whatever order handlers finish in. Commits carry `omnibus:delivered=<offset>` as
 *   metadata, so a later member knows which messages were handed out before (`redelivered`).
 * - A rebalance or a consumer restart starts a new epoch: kafkajs fetches again from the committed
 *   offsets, so messages that were in flight are delivered again (at-least-once; counted, never
 *   hidden). Acks from an old epoch no longer commit anything.
 * - A kafkajs consumer that crashes is restarted (kafkajs does it for retriable errors, we do it
 *   for the others) and every crash is reported: a consumer never sits idle silently.
 */
import { randomUUID } from 'node:crypto';
import {
  ConnectionError,
  type Deliver,
  type Delivery,
  type Headers,
  type Logger,
  type LogPosition,
  OffsetTracker,
  type SubjectMatcher,
  type Subscription,
} from '@omnibus/core';
import type {
  Admin,
  Consumer,
  ConsumerCommitOffsetsEvent,
  ConsumerCrashEvent,
  ConsumerGroupJoinEvent,
  EachBatchPayload,
  Kafka,
} from 'kafkajs';
import { explain, isConnectionProblem } from './errors.js';
import { type ResolvedKafkaOptions, retryOptions } from './options.js';
import { fromRecord, type IncomingRecord } from './record.js';
import { DelayedRetries } from './retry.js';

/** What the adapter gives each consumer. */
export interface ConsumerContext {
  readonly kafka: Kafka;
  readonly admin: Admin;
  readonly options: ResolvedKafkaOptions;
  readonly logger: Logger;
  readonly reportError: (error: Error) => void;
  /** The cluster looks unreachable (for the connection state). */
  readonly lost: (error: Error) => void;
  /** Re-publishes a queue message for a retry. */
  readonly republish: (topic: string, record: IncomingRecord, headers: Headers) => Promise<void>;
}

export interface GroupConsumerSpec {
  readonly kind: 'queue' | 'topic' | 'log';
  readonly topic: string;
  readonly groupId: string;
  /** A group made for this consumer alone: deleted when it closes. */
  readonly throwaway: boolean;
  /** Partitions with no committed offset and no seed start at the earliest (true) or latest offset. */
  readonly fromBeginning: boolean;
  /** Start offsets for partitions that had no committed offset; committed right after the first join. */
  readonly seeds: ReadonlyMap<number, number>;
  /** Routing done here: records whose subject does not match are skipped (and committed). */
  readonly filter: SubjectMatcher | undefined;
  readonly prefetch: number;
}

const DELIVERED = /^omnibus:delivered=(\d+)$/;
const JOIN_TIMEOUT_MS = 25_000;
const noop = () => undefined;

class PartitionState {
  readonly tracker: OffsetTracker;
  /** Next offset to hand out; anything below was handed out in this epoch. */
  next: number;
  /** Highest offset handed out in this epoch. */
  high = -1;
  committed: number;
  committedMark = -1;

  constructor(
    readonly partition: number,
    start: number,
    committed: number,
  ) {
    this.tracker = new OffsetTracker(start);
    this.next = start;
    this.committed = committed;
  }
}

export class GroupConsumer implements Subscription {
  private consumer: Consumer | undefined;
  private epoch = 0;
  private states = new Map<number, PartitionState>();
  /** Per partition: committed offset and delivered mark read at the start of this epoch. */
  private committedAtJoin = new Map<number, { offset: number; mark: number }>();
  private ready: Promise<void> = Promise.resolve();
  /** Highest offset handed out by this process, across epochs (for `redelivered`). */
  private readonly handedOut = new Map<number, number>();
  private readonly pendingSeeds: Map<number, number>;
  private outstanding = 0;
  private readonly waiters = new Set<() => void>();
  private readonly retries: DelayedRetries;
  private stopping = false;
  private closing: Promise<void> | undefined;
  private commitChain: Promise<void> = Promise.resolve();
  private commitTimer: NodeJS.Timeout | undefined;
  private restartTimer: NodeJS.Timeout | undefined;
  private restarts = 0;
  private joined: { resolve: () => void; reject: (error: Error) => void } | undefined;
  /** Counters, for diagnostics and tests. */
  readonly stats = { joins: 0, crashes: 0, delivered: 0, redelivered: 0, commits: 0 };

  constructor(
    private readonly ctx: ConsumerContext,
    private readonly spec: GroupConsumerSpec,
    private readonly deliver: Deliver,
    /** Queue retries re-publish unkeyed messages; otherwise core retries in process. */
    private readonly republishRetries: boolean,
    private readonly onClosed: (consumer: GroupConsumer) => void,
  ) {
    this.pendingSeeds = new Map(spec.seeds);
    this.retries = new DelayedRetries(spec.topic, ctx.reportError);
  }

  /** Starts consuming; resolves once the group is joined and the start offsets are committed. */
  async start(): Promise<void> {
    const joined = new Promise<void>((resolve, reject) => {
      this.joined = { resolve, reject };
    });
    const timer = setTimeout(
      () =>
        this.joined?.reject(
          new ConnectionError(
            `consumer of "${this.spec.topic}" did not join group "${this.spec.groupId}" within ${JOIN_TIMEOUT_MS} ms`,
            { adapter: 'kafka' },
          ),
        ),
      JOIN_TIMEOUT_MS,
    );
    try {
      await this.launch();
      await joined;
      await this.commitSeeds();
    } catch (error) {
      await this.close().catch(noop);
      throw error;
    } finally {
      clearTimeout(timer);
      this.joined = undefined;
    }
  }

  async stop(): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    this.retries.stop();
    for (const wake of this.waiters) wake();
    try {
      this.consumer?.pause([{ topic: this.spec.topic }]);
    } catch {
      // Not running (between a crash and its restart): nothing is fetched anyway.
    }
  }

  close(): Promise<void> {
    this.closing ??= this.shutdown();
    return this.closing;
  }

  private async shutdown(): Promise<void> {
    await this.stop();
    clearTimeout(this.commitTimer);
    clearTimeout(this.restartTimer);
    // Commit what was acked while the member is still in the group; offsets of unfinished (released)
    // messages stay uncommitted, so the group gets them again.
    await this.commit(true).catch((error: unknown) =>
      this.ctx.logger.warn(
        `[omnibus] [kafka] final commit of group "${this.spec.groupId}" failed: ${explain(error)}`,
      ),
    );
    const consumer = this.consumer;
    this.consumer = undefined;
    await consumer?.disconnect().catch(noop);
    if (this.spec.throwaway) {
      await this.ctx.admin.deleteGroups([this.spec.groupId]).catch(noop);
    }
    this.onClosed(this);
  }

  /** Creates and runs a kafkajs consumer (again, after a crash kafkajs does not recover from). */
  private async launch(): Promise<void> {
    const o = this.ctx.options;
    const consumer = this.ctx.kafka.consumer({
      groupId: this.spec.groupId,
      sessionTimeout: o.sessionTimeoutMs,
      rebalanceTimeout: o.rebalanceTimeoutMs,
      heartbeatInterval: o.heartbeatIntervalMs,
      maxWaitTimeInMs: o.maxWaitTimeMs,
      allowAutoTopicCreation: false,
      retry: {
        ...retryOptions(o),
        // After close, a crash must not bring a zombie member back (kafkajs restarts on a timer).
        restartOnFailure: async () => this.closing === undefined,
      },
    });
    this.consumer = consumer;
    const { GROUP_JOIN, CRASH, COMMIT_OFFSETS, REBALANCING } = consumer.events;
    consumer.on(GROUP_JOIN, (event) => this.onJoin(consumer, event));
    consumer.on(CRASH, (event) => this.onCrash(consumer, event));
    consumer.on(COMMIT_OFFSETS, (event) => this.onCommitted(event));
    // Commit what is finished before the partitions move (commits are accepted while the group rebalances).
    consumer.on(REBALANCING, () => void this.commit().catch(noop));
    await consumer.connect();
    await subscribeWhenKnown(consumer, this.spec.topic, this.spec.fromBeginning);
    await consumer.run({
      autoCommit: false,
      eachBatchAutoResolve: false,
      // One batch at a time per consumer: per-partition order; handlers run concurrently in core.
      partitionsConsumedConcurrently: 1,
      eachBatch: (payload) => this.eachBatch(consumer, payload),
    });
  }

  private onJoin(consumer: Consumer, event: ConsumerGroupJoinEvent): void {
    if (consumer !== this.consumer) return;
    this.epoch++;
    this.stats.joins++;
    this.restarts = 0;
    this.states = new Map();
    const assigned = event.payload.memberAssignment[this.spec.topic] ?? [];
    // Start offsets apply to our partitions; the others belong to members that chose their own.
    for (const partition of this.pendingSeeds.keys()) {
      if (!assigned.includes(partition)) this.pendingSeeds.delete(partition);
    }
    for (const [partition, seed] of this.pendingSeeds) {
      consumer.seek({ topic: this.spec.topic, partition, offset: String(seed) });
    }
    const epoch = this.epoch;
    this.committedAtJoin = new Map();
    const nothingCommittedYet = this.spec.throwaway && this.stats.joins === 1;
    this.ready = nothingCommittedYet
      ? Promise.resolve()
      : this.loadCommitted(epoch).catch((error: unknown) =>
          this.ctx.logger.debug(
            `[omnibus] [kafka] could not read the committed offsets of "${this.spec.groupId}": ${explain(error)}`,
          ),
        );
    this.joined?.resolve();
  }

  private async loadCommitted(epoch: number): Promise<void> {
    const [topic] = await this.ctx.admin.fetchOffsets({
      groupId: this.spec.groupId,
      topics: [this.spec.topic],
    });
    if (epoch !== this.epoch || topic === undefined) return;
    for (const p of topic.partitions) {
      const offset = Number(p.offset);
      const mark = DELIVERED.exec(p.metadata ?? '')?.[1];
      this.committedAtJoin.set(p.partition, { offset, mark: mark === undefined ? -1 : Number(mark) });
    }
  }

  private onCrash(consumer: Consumer, event: ConsumerCrashEvent): void {
    if (consumer !== this.consumer || this.closing !== undefined) return;
    const { error, restart } = event.payload;
    this.stats.crashes++;
    this.epoch++;
    this.states = new Map();
    if (isConnectionProblem(error)) this.ctx.lost(error);
    const what = `consumer of "${this.spec.topic}" (group "${this.spec.groupId}") crashed: ${explain(error)}`;
    if (restart) {
      this.ctx.logger.warn(`[omnibus] [kafka] ${what}; kafkajs restarts it`);
      return;
    }
    const delayMs = Math.min(1000 * 2 ** this.restarts, 30_000);
    this.restarts++;
    this.ctx.reportError(
      new ConnectionError(`${what}; restarting it in ${delayMs} ms`, { adapter: 'kafka', cause: error }),
    );
    this.restartTimer = setTimeout(() => void this.relaunch(), delayMs);
  }

  private async relaunch(): Promise<void> {
    if (this.closing !== undefined) return;
    const old = this.consumer;
    await old?.disconnect().catch(noop);
    try {
      await this.launch();
      if (this.stopping) this.consumer?.pause([{ topic: this.spec.topic }]);
    } catch (error) {
      const consumer = this.consumer;
      if (consumer !== undefined) this.onCrash(consumer, crashEvent(error, this.spec.groupId));
    }
  }

  private onCommitted(event: ConsumerCommitOffsetsEvent): void {
    this.stats.commits++;
    for (const topic of event.payload.topics) {
      if (topic.topic !== this.spec.topic) continue;
      for (const p of topic.partitions) {
        const offset = Number(String(p.offset));
        if (this.pendingSeeds.get(p.partition) !== undefined) this.pendingSeeds.delete(p.partition);
        const state = this.states.get(p.partition);
        if (state !== undefined && offset > state.committed) state.committed = offset;
      }
    }
  }

  private async eachBatch(consumer: Consumer, payload: EachBatchPayload): Promise<void> {
    const { batch, resolveOffset, heartbeat, isRunning, isStale } = payload;
    const epoch = this.epoch;
    // The committed marks only decide `redelivered`: not worth holding the batch (and heartbeats) long.
    await Promise.race([this.ready, new Promise((resolve) => setTimeout(resolve, 5000).unref())]);
    const current = () =>
      !this.stopping && epoch === this.epoch && consumer === this.consumer && isRunning() && !isStale();
    const partition = batch.partition;
    for (const message of batch.messages) {
      if (!current()) return;
      const offset = Number(message.offset);
      let state = this.states.get(partition);
      if (state === undefined) {
        const committed = this.committedAtJoin.get(partition)?.offset ?? -1;
        state = new PartitionState(partition, offset, committed);
        this.states.set(partition, state);
      }
      if (offset < state.next) {
        resolveOffset(message.offset);
        continue;
      }
      if (this.outstanding >= this.spec.prefetch && !(await this.waitForRoom(heartbeat, current))) return;
      state.tracker.delivered(offset);
      state.next = offset + 1;
      state.high = offset;
      resolveOffset(message.offset);
      const record = fromRecord(this.spec.topic, partition, message);
      if (this.spec.filter !== undefined && !this.spec.filter(record.subject)) {
        // Routing on the client: not for this subscription, so done at once.
        this.finish(state, offset);
        continue;
      }
      const before = Math.max(
        this.handedOut.get(partition) ?? -1,
        this.committedAtJoin.get(partition)?.mark ?? -1,
      );
      const redelivered = offset <= before;
      if (offset > (this.handedOut.get(partition) ?? -1)) this.handedOut.set(partition, offset);
      this.stats.delivered++;
      if (redelivered) this.stats.redelivered++;
      this.outstanding++;
      const delivery = this.delivery(state, offset, record, redelivered, message);
      const settled = () => {
        this.outstanding--;
        for (const wake of this.waiters) wake();
      };
      // Core's deliver never rejects; if it did, the message stays uncommitted and comes back.
      this.deliver(delivery).then(settled, (error: unknown) => {
        settled();
        this.ctx.reportError(error instanceof Error ? error : new Error(String(error)));
      });
    }
  }

  /** Waits until fewer than `prefetch` deliveries are outstanding, heartbeating meanwhile. */
  private async waitForRoom(heartbeat: () => Promise<void>, current: () => boolean): Promise<boolean> {
    while (this.outstanding >= this.spec.prefetch) {
      await new Promise<void>((resolve) => {
        const wake = () => {
          clearTimeout(timer);
          this.waiters.delete(wake);
          resolve();
        };
        const timer = setTimeout(wake, this.ctx.options.heartbeatIntervalMs);
        this.waiters.add(wake);
      });
      if (!current()) return false;
      try {
        await heartbeat();
      } catch (error) {
        // A rebalance: commit what is finished, then let kafkajs rejoin.
        await this.commit().catch(noop);
        throw error;
      }
    }
    return current();
  }

  private delivery(
    state: PartitionState,
    offset: number,
    record: IncomingRecord,
    redelivered: boolean,
    message: unknown,
  ): Delivery {
    const position: LogPosition = { partition: state.partition, offset };
    const delivery: Delivery = {
      id: record.id,
      body: record.body,
      headers: record.headers,
      key: record.key,
      subject: record.subject,
      timestamp: record.timestamp,
      redelivered,
      ...(this.spec.kind === 'log' ? { position } : {}),
      raw: { topic: this.spec.topic, partition: state.partition, offset, message },
      ack: async () => this.finish(state, offset),
      // Released (consumer closing): left unfinished, so it is not committed and comes back.
      release: noop,
    };
    if (!this.republishRetries || record.key !== undefined) return delivery;
    // Unkeyed queue messages retry by re-publishing a copy at the end of the topic, so one poison
    // message never holds up the partition; keyed ones retry in process to keep their key's order.
    return {
      ...delivery,
      retry: async ({ delayMs, headers }) => {
        if (delayMs === 0) {
          await this.ctx.republish(this.spec.topic, record, headers);
          this.finish(state, offset);
          return;
        }
        // Not in a handler slot (see retry.ts). The message still counts against prefetch, and its
        // offset stays uncommitted until the copy is out.
        this.outstanding++;
        void this.retries
          .run(delayMs, async () => {
            await this.ctx.republish(this.spec.topic, record, headers);
            this.finish(state, offset);
          })
          .finally(() => {
            this.outstanding--;
            for (const wake of this.waiters) wake();
          });
      },
    };
  }

  private finish(state: PartitionState, offset: number): void {
    // An ack from an earlier epoch commits nothing: that message is being delivered again.
    if (state.tracker.finish(offset) && this.states.get(state.partition) === state) this.scheduleCommit();
  }

  private scheduleCommit(): void {
    if (this.commitTimer !== undefined || this.closing !== undefined) return;
    this.commitTimer = setTimeout(() => {
      this.commitTimer = undefined;
      void this.commit().catch((error: unknown) =>
        this.ctx.logger.debug(
          `[omnibus] [kafka] commit of group "${this.spec.groupId}" failed (retried on the next ack): ${explain(error)}`,
        ),
      );
    }, this.ctx.options.commitIntervalMs);
  }

  /** Commits finished offsets of the current epoch; one commit at a time. */
  private commit(final = false): Promise<void> {
    const next = this.commitChain.then(() => this.commitOnce(final));
    this.commitChain = next.catch(noop);
    return next;
  }

  private async commitOnce(final: boolean): Promise<void> {
    const consumer = this.consumer;
    if (consumer === undefined) return;
    const entries: { topic: string; partition: number; offset: string; metadata: string }[] = [];
    for (const state of this.states.values()) {
      const offset = state.tracker.committable;
      const moved = offset > state.committed;
      const marked = final && state.high >= offset && state.high > state.committedMark;
      if (!moved && !marked) continue;
      entries.push({
        topic: this.spec.topic,
        partition: state.partition,
        offset: String(offset),
        metadata: `omnibus:delivered=${state.high}`,
      });
      if (marked) state.committedMark = state.high;
    }
    if (entries.length > 0) await consumer.commitOffsets(entries);
  }

  /** Commits the start offsets chosen for partitions that had none, so a rebalance cannot lose them. */
  private async commitSeeds(): Promise<void> {
    for (let attempt = 0; attempt < 50 && this.pendingSeeds.size > 0; attempt++) {
      // kafkajs ignores commits until its runner is marked running, just after the join event.
      await new Promise((resolve) => setTimeout(resolve, attempt === 0 ? 0 : 20));
      const consumer = this.consumer;
      if (consumer === undefined || this.closing !== undefined) return;
      const entries = [...this.pendingSeeds].map(([partition, offset]) => ({
        topic: this.spec.topic,
        partition,
        offset: String(offset),
      }));
      const committing = this.commitChain.then(() => consumer.commitOffsets(entries)).catch(noop);
      this.commitChain = committing;
      await committing;
    }
  }
}

/**
 * kafkajs does not retry `subscribe`, and on a cluster a topic just created is not in every
 * broker's metadata yet (UNKNOWN_TOPIC_OR_PARTITION for a moment): try again briefly.
 */
async function subscribeWhenKnown(consumer: Consumer, topic: string, fromBeginning: boolean): Promise<void> {
  for (let attempt = 0; ; attempt++) {
    try {
      await consumer.subscribe({ topics: [topic], fromBeginning });
      return;
    } catch (error) {
      const retriable = (error as { retriable?: unknown }).retriable === true;
      if (!retriable || attempt >= 8) throw error;
      await new Promise((resolve) => setTimeout(resolve, Math.min(100 * 2 ** attempt, 2000)));
    }
  }
}

function crashEvent(error: unknown, groupId: string): ConsumerCrashEvent {
  return {
    id: randomUUID(),
    type: 'consumer.crash',
    timestamp: Date.now(),
    payload: { error: error instanceof Error ? error : new Error(String(error)), groupId, restart: false },
  };
}
