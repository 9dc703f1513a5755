/**
 * Reading a log: a stream consumer with `x-stream-offset` (first, next, an offset, or a timestamp),
 * acking each entry as its handler finishes (for a stream an ack only grants credit; prefetch is
 * required). Positions are `{ partition: 0, offset }`: one stream is one ordered partition.
 *
 * Streams keep no progress for AMQP 0-9-1 consumers, so groups are Omnibus's own:
 * - one reader of a group is active at a time: it holds the group's lock, an exclusive queue
 *   (which the broker deletes with the connection that held it); the others stand by and try to
 *   take over every `groupTakeoverMs`;
 * - the active reader commits the first offset whose handler has not finished (core's
 *   OffsetTracker) every `commitIntervalMs` and on close, as a confirmed message in the group's
 *   offsets queue, which keeps only its latest message (`x-max-length: 1`); a reader that takes
 *   over reads it with `basic.get` and starts there.
 */
import type { Attached, Deliver, Lifecycle, LogSpec, ReadSpec, Subscription } from '@omnibus/core';
import { Committer, HEADER, OffsetTracker, ValidationError } from '@omnibus/core';
import type { Channel, ChannelModel, ConsumeMessage } from 'amqplib';
import { attachConsumer, type ConsumeContext, type Owner, quietly } from './consume.js';
import { headerText, received } from './message.js';
import { ADAPTER } from './options.js';
import { brokerError, replyCode } from './session.js';
import { groupQueueName } from './topology.js';

type StreamOffset = number | 'first' | 'next' | { readonly '!': 'timestamp'; readonly value: number };

/** Where a stream consumer attaches, and the first offset or sending time it hands on. */
interface Start {
  readonly offset: StreamOffset;
  readonly from?: number;
  readonly since?: number;
}

/** Locks held in this process: an exclusive queue does not keep out another reader on the same connection. */
const localLocks = new Set<string>();

/**
 * Starts reading `log`. `ackEvery`: acks (credit, for a stream) go out for that many entries at
 * once, all up to the last; only for a `deliver` that finishes entries in order.
 */
export async function readLog(
  ctx: ConsumeContext,
  log: LogSpec,
  spec: ReadSpec,
  deliver: Deliver,
  ackEvery = 1,
): Promise<Subscription> {
  const partitions = spec.from.kind === 'positions' ? spec.from.positions.map((p) => p.partition) : [];
  if (partitions.some((p) => p !== 0)) {
    const why = `one RabbitMQ stream with a single partition (0); positions name partitions ${partitions.join(', ')}`;
    throw new ValidationError(`log "${log.name}" is ${why}`, [], { adapter: ADAPTER });
  }
  await ctx.topology.stream(log.name);
  const reader = new StreamReader(ctx, log, spec, deliver, ackEvery);
  reader.lifecycle = await ctx.session.subscribe((model) => reader.attach(model));
  return reader;
}

class StreamReader implements Owner, Subscription {
  lifecycle: Lifecycle<ChannelModel> | undefined;
  /** Tracks the offsets handed out since the last attach; undefined until the first entry. */
  private tracker: OffsetTracker | undefined;
  /** Where reading resumes after a reconnection (the first unfinished offset). */
  private resumeAt: number | undefined;
  /** When a read from 'latest' first attached: after a reconnection with nothing read yet, it resumes from then. */
  private startedAt: number | undefined;
  /** Entries finished since the last ack. */
  private unacked = 0;
  private readonly group: Group | undefined;

  constructor(
    private readonly ctx: ConsumeContext,
    private readonly log: LogSpec,
    private readonly spec: ReadSpec,
    private readonly deliver: Deliver,
    private readonly ackEvery: number,
  ) {
    this.group =
      spec.group === undefined ? undefined : new Group(ctx, log.name, spec.group, () => this.position());
  }

  async attach(model: ChannelModel): Promise<Attached> {
    const what = `reading log "${this.log.name}"`;
    const acquired = await this.group?.acquire(model).catch((error: unknown) => {
      throw brokerError(`${what}: taking the group's lock`, error);
    });
    if (acquired === false) return this.standBy(model);
    let accepts: ReturnType<typeof startFilter> | undefined;
    try {
      return await attachConsumer(this.ctx, model, this, {
        what,
        prefetch: this.spec.prefetch,
        prepare: async () => {
          await this.ctx.topology.stream(this.log.name);
          const start = await this.start();
          accepts = startFilter(start);
          return { queue: this.log.name, arguments: { 'x-stream-offset': start.offset } };
        },
        onMessage: (channel, msg) => this.onEntry(channel, accepts!, msg),
        // Whether the connection went or only the channel, take the lock again before reading on.
        onClose: () => this.group?.lost(),
      });
    } catch (error) {
      this.group?.release();
      throw error;
    }
  }

  stop(): Promise<void> {
    return this.lifecycle?.stop() ?? Promise.resolve();
  }

  /** Commits what finished (with a group), releases the group's lock, and gives back the rest. */
  async close(): Promise<void> {
    await this.group?.close();
    await this.lifecycle?.close();
  }

  /** The first offset not finished yet, or undefined before anything was delivered. */
  private position(): number | undefined {
    return this.tracker?.committable ?? this.resumeAt;
  }

  private async start(): Promise<Start> {
    this.resumeAt = this.position();
    this.tracker = undefined;
    this.unacked = 0;
    const committed = await this.group?.load();
    const known = Math.max(this.resumeAt ?? -1, committed ?? -1);
    if (known >= 0) return { offset: known, from: known };
    const from = this.spec.from;
    switch (from.kind) {
      case 'earliest':
        return { offset: 'first' };
      case 'latest':
        if (this.startedAt === undefined) {
          this.startedAt = Date.now();
          return { offset: 'next' };
        }
        // Attached again before the first entry: what was appended meanwhile is still to be read.
        return fromTime(this.startedAt);
      case 'positions': {
        const offset = from.positions.find((p) => p.partition === 0)?.offset;
        return offset === undefined ? { offset: 'first' } : { offset, from: offset };
      }
      case 'timestamp':
        return fromTime(from.timestamp);
    }
  }

  private onEntry(
    channel: Channel,
    accepts: (offset: number, sentAt: number) => boolean,
    msg: ConsumeMessage,
  ): void {
    const offset = Number(headerText(msg.properties.headers?.['x-stream-offset']));
    const fields = received(msg);
    const sentAt = Number(fields.headers[HEADER.timestamp] ?? fields.timestamp);
    if (this.lifecycle?.stopped === true || !Number.isInteger(offset) || !accepts(offset, sentAt)) {
      quietly(() => channel.ack(msg));
      return;
    }
    this.tracker ??= new OffsetTracker(offset);
    const tracker = this.tracker;
    tracker.delivered(offset);
    void this.deliver({
      ...fields,
      // Stable for the entry (every read of it, by any reader) and unique in its stream.
      id: fields.id ?? `stream-${offset}`,
      redelivered: false,
      position: { partition: 0, offset },
      ack: async () => {
        // For a stream an ack only grants credit.
        if (++this.unacked >= this.ackEvery) {
          this.unacked = 0;
          quietly(() => channel.ack(msg, this.ackEvery > 1));
        }
        if (tracker.finish(offset) && tracker === this.tracker) this.group?.progressed();
      },
    });
  }

  /** Standing by in a group: try to take the lock now and then; once taken, attach for real. */
  private standBy(model: ChannelModel): Attached {
    const timer = setInterval(() => {
      if (this.ctx.session.model !== model) return clearInterval(timer);
      void this.group!.acquire(model).then(
        (acquired) => {
          if (acquired && this.lifecycle?.current === standby) this.lifecycle.broken();
        },
        () => undefined,
      );
    }, this.ctx.settings.groupTakeoverMs);
    timer.unref();
    const standby: Attached = { close: async () => clearInterval(timer) };
    return standby;
  }
}

/**
 * Stream timestamps are chunk times in whole seconds: start a second early (clock skew) and skip
 * what was sent before `ms`.
 */
function fromTime(ms: number): Start {
  return { offset: { '!': 'timestamp', value: Math.floor(ms / 1000) - 1 }, since: ms };
}

/** Skips entries before the start: a stream consumer starts at a chunk, which may begin earlier. */
function startFilter(start: Start): (offset: number, sentAt: number) => boolean {
  let open = false;
  return (offset, sentAt) => {
    open ||= !(offset < (start.from ?? offset) || sentAt < (start.since ?? sentAt));
    return open;
  };
}

/** A group's lock and committed offset. */
class Group {
  private readonly lock: string;
  private readonly offsets: string;
  /** This group's lock among the readers of this process (the broker URL tells vhosts apart). */
  private readonly localKey: string;
  /** The connection whose exclusive lock queue this reader holds (the broker deletes it with that connection). */
  private holding: ChannelModel | undefined;
  private committed: number | undefined;
  private readonly committer: Committer;

  constructor(
    private readonly ctx: ConsumeContext,
    log: string,
    group: string,
    private readonly position: () => number | undefined,
  ) {
    this.lock = groupQueueName('lock', log, group);
    this.offsets = groupQueueName('offsets', log, group);
    this.localKey = `${ctx.settings.redacted} ${this.lock}`;
    this.committer = new Committer(() => this.commitOnce(), ctx.settings.commitIntervalMs);
  }

  /** Takes the group's lock on `model` when no other reader holds it. */
  async acquire(model: ChannelModel): Promise<boolean> {
    if (this.holding === model) return true;
    // A lock held on a lost connection went with it.
    this.lost();
    if (localLocks.has(this.localKey)) return false;
    localLocks.add(this.localKey);
    try {
      await this.ctx.session.withChannel((ch) =>
        ch.assertQueue(this.lock, { exclusive: true, durable: false, autoDelete: false }),
      );
      this.holding = model;
      return true;
    } catch (error) {
      localLocks.delete(this.localKey);
      if (replyCode(error) === 405) return false;
      throw error;
    }
  }

  /** The committed offset (the next to read), or undefined when the group has none. */
  async load(): Promise<number | undefined> {
    await this.ctx.topology.groupOffsets(this.offsets);
    const stored = await this.ctx.session.withChannel(async (ch) => {
      const msg = await ch.get(this.offsets, { noAck: false });
      // Closing the throwaway channel puts it back.
      return msg === false ? undefined : parseOffset(msg.content.toString('utf8'));
    });
    if (stored !== undefined && stored > (this.committed ?? -1)) this.committed = stored;
    return this.committed;
  }

  /** A handler finished and the committable offset moved: commit soon. */
  progressed(): void {
    if (this.holds()) this.committer.soon();
  }

  private holds(): boolean {
    return this.holding !== undefined && this.holding === this.ctx.session.model;
  }

  /**
   * Stops counting as the holder; the lock queue stays with its connection (gone with it, or taken
   * again by the next `acquire` on it: the broker lets the owning connection declare it again).
   */
  lost(): void {
    if (this.holding !== undefined) localLocks.delete(this.localKey);
    this.holding = undefined;
    this.committer.cancel();
  }

  release(): void {
    const held = this.holding;
    this.lost();
    if (held !== undefined && held === this.ctx.session.model)
      void this.ctx.session.withChannel((ch) => ch.deleteQueue(this.lock)).catch(() => undefined);
  }

  async close(): Promise<void> {
    if (this.holds()) await this.committer.now().catch(() => undefined);
    this.release();
  }

  /** Commits the first unfinished offset, never backwards (one at a time: see `Committer`). */
  private async commitOnce(): Promise<void> {
    const offset = this.position();
    if (!this.holds() || offset === undefined || offset <= (this.committed ?? -1)) return;
    const body = Buffer.from(
      JSON.stringify({ offset, at: new Date().toISOString(), by: this.ctx.session.context.clientId }),
    );
    await this.ctx.publisher.publish(
      '',
      this.offsets,
      body,
      { persistent: true, contentType: 'application/json' },
      true,
    );
    this.committed = offset;
  }
}

/** The offset a commit message stores, when it is one (the queue is open to anyone). */
function parseOffset(text: string): number | undefined {
  try {
    const offset = (JSON.parse(text) as { offset?: unknown } | null)?.offset;
    return Number.isInteger(offset) && (offset as number) >= 0 ? (offset as number) : undefined;
  } catch {
    return undefined;
  }
}
