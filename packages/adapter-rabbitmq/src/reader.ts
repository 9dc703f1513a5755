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
import type {
  Attached,
  Deliver,
  Lifecycle,
  LogPosition,
  LogSpec,
  ReadSpec,
  Subscription,
} from '@omnibus/core';
import { CONFIRMED, Committer, LogStart, OffsetTracker } from '@omnibus/core';
import type { Channel, ChannelModel, ConsumeMessage } from 'amqplib';
import { attachConsumer, type ConsumeContext } from './consume.js';
import { AmqpDelivery, headerText, quietly } from './message.js';
import { ADAPTER } from './options.js';
import { brokerError, replyCode } from './session.js';
import { groupQueueName } from './topology.js';

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
  const start = new LogStart(spec.from, `log "${log.name}" (one RabbitMQ stream)`, ADAPTER);
  await ctx.topology.stream(log.name);
  const reader = new StreamReader(ctx, log, spec, start, deliver, ackEvery);
  reader.lifecycle = await ctx.session.subscribe((model, broken) => reader.attach(model, broken));
  return reader;
}

class StreamReader implements Subscription {
  lifecycle: Lifecycle<ChannelModel> | undefined;
  /** Tracks the offsets handed out since the last attach; undefined until the first entry. */
  private tracker: OffsetTracker | undefined;
  /** Where reading resumes after a reconnection (the first unfinished offset). */
  private resumeAt: number | undefined;
  /** Entries finished since the last ack. */
  private unacked = 0;
  private readonly group: Group | undefined;

  constructor(
    private readonly ctx: ConsumeContext,
    private readonly log: LogSpec,
    private readonly spec: ReadSpec,
    private readonly from: LogStart,
    private readonly deliver: Deliver,
    private readonly ackEvery: number,
  ) {
    this.group =
      spec.group === undefined ? undefined : new Group(ctx, log.name, spec.group, () => this.position());
  }

  async attach(model: ChannelModel, broken: (reason?: Error) => void): Promise<Attached> {
    const what = `reading log "${this.log.name}"`;
    const acquired = await this.group?.acquire(model).catch((error: unknown) => {
      throw brokerError(`${what}: taking the group's lock`, error);
    });
    if (acquired === false) return this.standBy(model, broken);
    try {
      return await attachConsumer(this.ctx, model, broken, {
        what,
        prefetch: this.spec.prefetch,
        prepare: async () => {
          await this.ctx.topology.stream(this.log.name);
          return { queue: this.log.name, arguments: { 'x-stream-offset': await this.start() } };
        },
        onMessage: (channel, msg) => this.onEntry(channel, msg),
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

  /** The `x-stream-offset` to attach at: the first unfinished offset this reader or its group knows, or the read's start. */
  private async start(): Promise<unknown> {
    this.resumeAt = this.position();
    this.tracker = undefined;
    this.unacked = 0;
    const committed = await this.group?.load();
    const known = Math.max(this.resumeAt ?? -1, committed ?? -1);
    const at = this.from.next(known >= 0 ? known : undefined);
    if (typeof at === 'string') return at;
    return 'offset' in at ? at.offset : { '!': 'timestamp', value: at.seconds };
  }

  private onEntry(channel: Channel, msg: ConsumeMessage): void {
    const offset = Number(headerText(msg.properties.headers?.['x-stream-offset']));
    const entry = new StreamEntry(channel, msg, offset, this);
    if (this.lifecycle?.stopped === true || !Number.isInteger(offset) || !this.from.accepts(offset, entry)) {
      quietly(() => channel.ack(msg));
      return;
    }
    this.tracker ??= new OffsetTracker(offset);
    this.tracker.delivered(offset);
    entry.tracker = this.tracker;
    void this.deliver(entry);
  }

  /** An entry's handler finished. For a stream an ack only grants credit. */
  finished(entry: StreamEntry, tracker: OffsetTracker | undefined): void {
    if (++this.unacked >= this.ackEvery) {
      this.unacked = 0;
      quietly(() => entry.channel.ack(entry.raw, this.ackEvery > 1));
    }
    if (tracker?.finish(entry.position.offset) === true && tracker === this.tracker) this.group?.progressed();
  }

  /** Standing by in a group: try to take the lock now and then; once taken, attach for real. */
  private standBy(model: ChannelModel, broken: () => void): Attached {
    const timer = setInterval(() => {
      if (this.ctx.session.model !== model) return clearInterval(timer);
      void this.group!.acquire(model).then(
        (acquired) => acquired && broken(),
        () => undefined,
      );
    }, this.ctx.settings.groupTakeoverMs);
    timer.unref();
    return { close: async () => clearInterval(timer) };
  }
}

/** A stream entry: never redelivered as such (a reader asks for an offset), its offset its position. */
class StreamEntry extends AmqpDelivery {
  override readonly redelivered = false;
  readonly position: LogPosition;
  /** The tracker of the attach that delivered it. */
  tracker: OffsetTracker | undefined;

  constructor(
    channel: Channel,
    msg: ConsumeMessage,
    offset: number,
    private readonly reader: StreamReader,
  ) {
    super(channel, msg);
    // Stable for the entry (every read of it, by any reader) and unique in its stream.
    this.id ??= `stream-${offset}`;
    this.position = { partition: 0, offset };
  }

  /** Done at once (the offset is marked finished; the committer commits it soon): no promise per message. */
  ack(): Promise<void> {
    this.reader.finished(this, this.tracker);
    return CONFIRMED;
  }
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
  /** Commits the first unfinished offset, never backwards. */
  private readonly commits: Committer;

  constructor(
    private readonly ctx: ConsumeContext,
    log: string,
    group: string,
    private readonly position: () => number | undefined,
  ) {
    this.lock = groupQueueName('lock', log, group);
    this.offsets = groupQueueName('offsets', log, group);
    this.localKey = `${ctx.settings.redacted} ${this.lock}`;
    this.commits = new Committer(() => this.commit(), ctx.settings.commitIntervalMs);
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
    if (this.holds()) this.commits.soon();
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
    this.commits.cancel();
  }

  release(): void {
    const held = this.holding;
    this.lost();
    if (held !== undefined && held === this.ctx.session.model)
      void this.ctx.session.withChannel((ch) => ch.deleteQueue(this.lock)).catch(() => undefined);
  }

  async close(): Promise<void> {
    if (this.holds()) await this.commits.now().catch(() => undefined);
    this.release();
  }

  private async commit(): Promise<void> {
    const offset = this.position();
    if (!this.holds() || offset === undefined || offset <= (this.committed ?? -1)) return;
    const body = Buffer.from(
      JSON.stringify({ offset, at: new Date().toISOString(), by: this.ctx.session.context.clientId }),
    );
    const options = { persistent: true, mandatory: true, contentType: 'application/json' };
    await this.ctx.publisher.publish('', this.offsets, body, options);
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
