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
 * - kafkajs reconnects and rejoins by itself and restarts after retriable crashes; a crash it does
 *   not restart from is reported and the member is attached again by core's `Lifecycle` (with
 *   backoff). Every kafkajs promise and event is handled here: a member that cannot join in time
 *   fails its attach, never the process.
 */
import {
  type Attached,
  ClosedError,
  CONFIRMED,
  Committer,
  ConnectionError,
  type Deliver,
  delay,
  HEADER,
  Lifecycle,
  type Logger,
  OffsetTracker,
  Outstanding,
  type SubjectMatcher,
  type Subscription,
  within,
  withTimeout,
} from '@omnibus/core';
import type {
  Admin,
  Consumer,
  ConsumerCommitOffsetsEvent,
  ConsumerCrashEvent,
  ConsumerGroupJoinEvent,
  EachBatchPayload,
  Kafka,
  KafkaMessage,
} from 'kafkajs';
import { explain, isConnectionProblem } from './errors.js';
import { type ResolvedKafkaOptions, retryOptions } from './options.js';
import { RecordDelivery } from './record.js';

/** What the adapter gives each consumer. */
export interface ConsumerContext {
  readonly kafka: Kafka;
  readonly admin: Admin;
  readonly options: ResolvedKafkaOptions;
  readonly logger: Logger;
  readonly reportError: (error: Error) => void;
  /** The cluster looks unreachable (for the connection state). */
  readonly lost: (error: Error) => void;
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
const noop = () => undefined;

interface PartitionState {
  readonly partition: number;
  readonly tracker: OffsetTracker;
  /** Highest offset handed out in this epoch; anything at or below it is not handed out again. */
  high: number;
  /** Committed offset, and the highest `delivered` mark committed. */
  committed: number;
  committedMark: number;
  /** The partition's high watermark at the last fetch: the offset the next appended record gets. */
  highWatermark: number;
}

export class GroupConsumer implements Subscription {
  private readonly lifecycle: Lifecycle<Kafka>;
  private consumer: Consumer | undefined;
  private epoch = 0;
  private states = new Map<number, PartitionState>();
  /** Per partition: committed offset and delivered mark read at the start of this epoch. */
  private committedAtJoin = new Map<number, { offset: number; mark: number }>();
  private ready: Promise<void> = Promise.resolve();
  /** Highest offset handed out by this process, across epochs (for `redelivered`). */
  private readonly handedOut = new Map<number, number>();
  private readonly pendingSeeds: Map<number, number>;
  /** Deliveries handed to core and not settled: at most `prefetch`. */
  private readonly outstanding = new Outstanding();
  private closing: Promise<void> | undefined;
  private readonly committer: Committer;
  /** The attach in progress: settled by the join, or failed by a crash kafkajs does not restart from. */
  private joining: { resolve: () => void; reject: (error: Error) => void } | undefined;
  /** Counters, for diagnostics and tests. */
  readonly stats = { joins: 0, crashes: 0 };

  constructor(
    private readonly ctx: ConsumerContext,
    private readonly spec: GroupConsumerSpec,
    private readonly deliver: Deliver,
    private readonly onClosed: (consumer: GroupConsumer) => void,
  ) {
    this.pendingSeeds = new Map(spec.seeds);
    this.lifecycle = new Lifecycle({ attach: () => this.attach(), report: ctx.reportError });
    this.committer = new Committer(
      async () => {
        if (this.consumer !== undefined) await this.commitOnce(this.consumer, false);
      },
      ctx.options.commitIntervalMs,
      (error) =>
        ctx.logger.debug(
          {},
          `commit of group "${spec.groupId}" failed (retried on the next ack): ${explain(error)}`,
        ),
    );
  }

  /** Starts consuming; resolves once the group is joined and the start offsets are committed. */
  async start(): Promise<void> {
    try {
      await this.lifecycle.start(this.ctx.kafka);
      await this.commitSeeds();
    } catch (error) {
      await this.close().catch(noop);
      throw error;
    }
  }

  /**
   * Messages not finished yet in the partitions this member has fetched from: each one's high
   * watermark at its last fetch minus the offset the group would commit now (a partition not
   * fetched yet is not counted). Undefined before the first fetch.
   */
  lag(): number | undefined {
    let lag: number | undefined;
    for (const state of this.states.values()) {
      if (state.highWatermark < 0) continue;
      lag = (lag ?? 0) + Math.max(0, state.highWatermark - state.tracker.committable);
    }
    return lag;
  }

  async stop(): Promise<void> {
    this.outstanding.wake();
    await this.lifecycle.stop();
  }

  close(): Promise<void> {
    this.closing ??= this.shutdown();
    return this.closing;
  }

  private async shutdown(): Promise<void> {
    this.outstanding.wake();
    // Closed while joining: give up the join now rather than at its deadline.
    this.joining?.reject(
      new ClosedError(`consumer of "${this.spec.topic}" closed while joining its group`, {
        adapter: 'kafka',
      }),
    );
    this.committer.cancel();
    await this.lifecycle.close().catch(noop);
    if (this.spec.throwaway) await this.ctx.admin.deleteGroups([this.spec.groupId]).catch(noop);
    this.onClosed(this);
  }

  /** Creates a kafkajs consumer and runs it until it has joined the group. */
  private async attach(): Promise<Attached> {
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
        // Once stopped, a crash must not bring a zombie member back (kafkajs restarts on a timer).
        restartOnFailure: async () => !this.lifecycle.stopped,
      },
    });
    this.consumer = consumer;
    const { GROUP_JOIN, CRASH, COMMIT_OFFSETS, REBALANCING } = consumer.events;
    consumer.on(GROUP_JOIN, (event) => this.onJoin(consumer, event));
    consumer.on(CRASH, (event) => this.onCrash(consumer, event));
    consumer.on(COMMIT_OFFSETS, (event) => this.onCommitted(event));
    // Commit what is finished before the partitions move (commits are accepted while the group rebalances).
    consumer.on(REBALANCING, () => void this.commit(consumer).catch(noop));
    const joined = new Promise<void>((resolve, reject) => {
      this.joining = { resolve, reject };
    });
    const late = () =>
      new ConnectionError(
        `consumer of "${this.spec.topic}" did not join group "${this.spec.groupId}" within ${o.joinTimeoutMs} ms`,
        { adapter: 'kafka' },
      );
    try {
      // kafkajs' run() resolves only once joined, which can outlast the deadline while other members
      // hang: both are awaited together, so neither rejection is ever left unhandled.
      await Promise.all([this.run(consumer), withTimeout(joined, o.joinTimeoutMs, late)]);
    } catch (error) {
      if (this.consumer === consumer) this.consumer = undefined;
      // Not awaited: kafkajs disconnects only once the join it is in ends (up to the rebalance timeout).
      void consumer.disconnect().catch(noop);
      throw error;
    } finally {
      this.joining = undefined;
    }
    return {
      stop: async () => {
        try {
          consumer.pause([{ topic: this.spec.topic }]);
        } catch {
          // Not running (between a crash and its restart): nothing is fetched anyway.
        }
      },
      close: () => this.detach(consumer),
    };
  }

  private async run(consumer: Consumer): Promise<void> {
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

  /** Commits what was acked while still a member; offsets of unfinished (released) messages stay uncommitted. */
  private async detach(consumer: Consumer): Promise<void> {
    await this.commit(consumer, true).catch((error: unknown) =>
      this.ctx.logger.warn({}, `final commit of group "${this.spec.groupId}" failed: ${explain(error)}`),
    );
    if (this.consumer === consumer) this.consumer = undefined;
    await consumer.disconnect().catch(noop);
  }

  private onJoin(consumer: Consumer, event: ConsumerGroupJoinEvent): void {
    if (consumer !== this.consumer) return;
    this.epoch++;
    this.stats.joins++;
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
            {},
            `could not read the committed offsets of "${this.spec.groupId}": ${explain(error)}`,
          ),
        );
    this.joining?.resolve();
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
    if (consumer !== this.consumer || this.lifecycle.stopped) return;
    const { error, restart } = event.payload;
    this.stats.crashes++;
    this.epoch++;
    this.states = new Map();
    if (isConnectionProblem(error)) this.ctx.lost(error);
    const what = `consumer of "${this.spec.topic}" (group "${this.spec.groupId}") crashed: ${explain(error)}`;
    if (restart) {
      this.ctx.logger.warn({}, `${what}; kafkajs restarts it`);
    } else if (this.joining !== undefined) {
      // Before the join: the attach fails (the first one fails the subscribe, later ones back off).
      this.joining.reject(new ConnectionError(what, { adapter: 'kafka', cause: error }));
    } else {
      this.ctx.reportError(new ConnectionError(`${what}; restarting it`, { adapter: 'kafka', cause: error }));
      this.lifecycle.broken(error);
    }
  }

  private onCommitted(event: ConsumerCommitOffsetsEvent): void {
    for (const topic of event.payload.topics) {
      if (topic.topic !== this.spec.topic) continue;
      for (const p of topic.partitions) {
        const offset = Number(p.offset);
        this.pendingSeeds.delete(p.partition);
        const state = this.states.get(p.partition);
        if (state !== undefined && offset > state.committed) state.committed = offset;
      }
    }
  }

  private async eachBatch(consumer: Consumer, payload: EachBatchPayload): Promise<void> {
    const { batch, resolveOffset, heartbeat, isRunning, isStale } = payload;
    const epoch = this.epoch;
    // The committed marks only decide `redelivered`: not worth holding the batch (and heartbeats) long.
    await within(this.ready, 5000);
    const current = () =>
      !this.lifecycle.stopped &&
      epoch === this.epoch &&
      consumer === this.consumer &&
      isRunning() &&
      !isStale();
    const partition = batch.partition;
    const highWatermark = Number(batch.highWatermark);
    const known = this.states.get(partition);
    if (known !== undefined) known.highWatermark = highWatermark;
    // kafkajs' resolveOffset costs a Long parse and add per call, and only its last value counts
    // (where the next fetch starts): the offsets handed out are resolved once, before anything
    // waits or returns (so a stale or stopped batch resolves exactly what it handed out).
    let resolved: string | undefined;
    try {
      for (const message of batch.messages) {
        if (!current()) return;
        const offset = Number(message.offset);
        let state = this.states.get(partition);
        if (state === undefined) {
          const committed = this.committedAtJoin.get(partition)?.offset ?? -1;
          state = {
            partition,
            tracker: new OffsetTracker(offset),
            high: -1,
            committed,
            committedMark: -1,
            highWatermark,
          };
          this.states.set(partition, state);
        }
        if (offset <= state.high) {
          resolved = message.offset;
          continue;
        }
        if (this.outstanding.size >= this.spec.prefetch) {
          if (resolved !== undefined) resolveOffset(resolved);
          resolved = undefined;
          if (!(await this.waitForRoom(consumer, heartbeat, current))) return;
        }
        state.tracker.delivered(offset);
        state.high = offset;
        resolved = message.offset;
        const delivery = new GroupDelivery(this, state, offset, message, this.spec);
        if (this.spec.filter !== undefined && !this.spec.filter(delivery.headers[HEADER.subject])) {
          // Routing on the client: not for this subscription, so done at once.
          this.finish(state, offset);
          continue;
        }
        this.outstanding.add();
        delivery.redelivered = this.handOut(state.partition, offset);
        this.deliver(delivery).then(this.settled);
      }
    } finally {
      if (resolved !== undefined) resolveOffset(resolved);
    }
  }

  private readonly settled = (): void => this.outstanding.done();

  /** Waits until fewer than `prefetch` deliveries are outstanding, heartbeating meanwhile. */
  private async waitForRoom(
    consumer: Consumer,
    heartbeat: () => Promise<void>,
    current: () => boolean,
  ): Promise<boolean> {
    while (this.outstanding.size >= this.spec.prefetch) {
      await this.outstanding.changed(this.ctx.options.heartbeatIntervalMs);
      if (!current()) return false;
      try {
        await heartbeat();
      } catch (error) {
        // A rebalance: commit what is finished, then let kafkajs rejoin.
        await this.commit(consumer).catch(noop);
        throw error;
      }
    }
    return current();
  }

  /** Records that `offset` of `partition` is handed out; true when it was before (`redelivered`). */
  private handOut(partition: number, offset: number): boolean {
    const high = this.handedOut.get(partition) ?? -1;
    if (offset > high) this.handedOut.set(partition, offset);
    return offset <= Math.max(high, this.committedAtJoin.get(partition)?.mark ?? -1);
  }

  finish(state: PartitionState, offset: number): void {
    // An ack from an earlier epoch commits nothing: that message is being delivered again.
    const current = this.states.get(state.partition) === state;
    if (state.tracker.finish(offset) && current && this.closing === undefined) this.committer.soon();
  }

  /** Commits finished offsets of the current epoch; one commit at a time. */
  private commit(consumer: Consumer, final = false): Promise<void> {
    return this.committer.now(() => this.commitOnce(consumer, final));
  }

  private async commitOnce(consumer: Consumer, final: boolean): Promise<void> {
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
      await delay(attempt === 0 ? 1 : 20);
      const consumer = this.consumer;
      if (consumer === undefined || this.closing !== undefined) return;
      const entries = [...this.pendingSeeds].map(([partition, offset]) => ({
        topic: this.spec.topic,
        partition,
        offset: String(offset),
      }));
      await this.committer.now(() => consumer.commitOffsets(entries)).catch(noop);
    }
  }
}

/** A record handed to core by a group consumer; its ack finishes its offset, for the commit. */
class GroupDelivery extends RecordDelivery {
  constructor(
    private readonly consumer: GroupConsumer,
    private readonly state: PartitionState,
    private readonly offset: number,
    message: KafkaMessage,
    spec: GroupConsumerSpec,
  ) {
    const { partition } = state;
    super(message, { topic: spec.topic, partition, offset, message });
    // Stable and unique: the id of a record another client sent without one (an Omnibus record
    // carries its own, which wins: no string is made for it).
    if (!this.headers[HEADER.id]) this.id = `${spec.topic}-${partition}-${offset}`;
    if (spec.kind === 'log') this.position = { partition, offset };
    // An unkeyed queue message retries by a copy at the end of its topic, so one poison message
    // never holds up the partition. Not a topic's: a copy there would reach every subscription.
    if (spec.kind === 'queue' && this.key === undefined) this.retryAddress = spec.topic;
  }

  /** Done at once (the offset is marked finished; the committer commits it soon): no promise per message. */
  ack(): Promise<void> {
    this.consumer.finish(this.state, this.offset);
    return CONFIRMED;
  }

  /** Released (consumer closing): left unfinished, so it is not committed and comes back. */
  release(): void {}
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
      await delay(Math.min(100 * 2 ** attempt, 2000));
    }
  }
}
