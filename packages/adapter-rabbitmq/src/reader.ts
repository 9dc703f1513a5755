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
import type { Deliver, Delivery, LogSpec, ReadSpec, Subscription } from '@omnibus/core';
import { OffsetTracker, ValidationError } from '@omnibus/core';
import type { Channel, ChannelModel, ConsumeMessage } from 'amqplib';
import type { ConsumeContext } from './consume.js';
import { decode, headerText } from './message.js';
import { ADAPTER, type Settings } from './options.js';
import {
  type Attachable,
  AttachOnce,
  closeQuietly,
  openChannel,
  replyCode,
  subscribeError,
} from './session.js';
import { groupQueueName } from './topology.js';

type StreamOffset = number | 'first' | 'next' | { readonly '!': 'timestamp'; readonly value: number };

/** Locks held in this process: an exclusive queue does not keep out another reader on the same connection. */
const localLocks = new Set<string>();

export class StreamReader implements Attachable, Subscription {
  private readonly once = new AttachOnce();
  private channel: Channel | undefined;
  private consumerTag: string | undefined;
  private model: ChannelModel | undefined;
  /** Tracks the offsets handed out since the last attach; undefined until the first entry. */
  private tracker: OffsetTracker | undefined;
  /** Where reading resumes after a reconnection (the first unfinished offset). */
  private resumeAt: number | undefined;
  private readonly group: Group | undefined;
  private standby: NodeJS.Timeout | undefined;
  private stopped = false;
  private closed = false;

  constructor(
    private readonly ctx: ConsumeContext,
    private readonly settings: Settings,
    private readonly log: LogSpec,
    private readonly spec: ReadSpec,
    private readonly deliver: Deliver,
  ) {
    if (spec.from.kind === 'positions' && spec.from.positions.some((p) => p.partition !== 0)) {
      throw new ValidationError(
        `log "${log.name}" is one RabbitMQ stream with a single partition (0); positions name partitions ${spec.from.positions
          .map((p) => p.partition)
          .join(', ')}`,
        [],
        { adapter: ADAPTER },
      );
    }
    this.group =
      spec.group === undefined
        ? undefined
        : new Group(ctx, settings, log.name, spec.group, () => this.position());
  }

  attach(model: ChannelModel): Promise<void> {
    return this.once.run(model, () => this.open(model));
  }

  private async open(model: ChannelModel): Promise<void> {
    if (this.stopped || this.model === model) return;
    const what = `reading log "${this.log.name}"`;
    const acquired = await this.group?.acquire().catch((error: unknown) => {
      throw subscribeError(`${what}: taking the group's lock`, error);
    });
    if (acquired === false) {
      this.waitForTakeover();
      return;
    }
    const channel = await openChannel(model, what);
    channel.on('error', () => undefined);
    channel.on('close', () => {
      if (this.channel !== channel) return;
      this.lostChannel();
      if (!this.stopped) this.ctx.session.reattach(this, undefined);
    });
    try {
      await this.ctx.topology.stream(this.log.name);
      const start = await this.start();
      const filter = new StartFilter(start);
      await channel.prefetch(this.spec.prefetch);
      const { consumerTag } = await channel.consume(
        this.log.name,
        (msg) => this.onEntry(channel, filter, msg),
        { noAck: false, arguments: { 'x-stream-offset': start.offset } },
      );
      if (this.stopped) {
        closeQuietly(channel);
        return;
      }
      this.channel = channel;
      this.consumerTag = consumerTag;
      this.model = model;
    } catch (error) {
      closeQuietly(channel);
      this.group?.release();
      throw subscribeError(what, error);
    }
  }

  detach(): void {
    this.lostChannel();
    this.group?.lost();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.cancelStandby();
    const { channel, consumerTag } = this;
    if (channel !== undefined && consumerTag !== undefined)
      await channel.cancel(consumerTag).catch(() => undefined);
  }

  /** Commits what finished (with a group), releases the group's lock, and gives back the rest. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.stopped = true;
    this.cancelStandby();
    this.ctx.session.remove(this);
    await this.group?.close();
    const channel = this.channel;
    this.lostChannel();
    if (channel !== undefined) await channel.close().catch(() => undefined);
  }

  /** The first offset not finished yet, or undefined before anything was delivered. */
  private position(): number | undefined {
    return this.tracker?.committable ?? this.resumeAt;
  }

  private async start(): Promise<{ offset: StreamOffset; from?: number; since?: number }> {
    const resume = this.position();
    const committed = await this.group?.load();
    this.tracker = undefined;
    const known = Math.max(resume ?? -1, committed ?? -1);
    if (known >= 0) return { offset: known, from: known };
    const from = this.spec.from;
    switch (from.kind) {
      case 'earliest':
        return { offset: 'first' };
      case 'latest':
        return { offset: 'next' };
      case 'positions': {
        const offset = from.positions.find((p) => p.partition === 0)?.offset;
        return offset === undefined ? { offset: 'first' } : { offset, from: offset };
      }
      case 'timestamp':
        // Stream timestamps are chunk times in whole seconds: start a second early (clock skew)
        // and skip what was sent before the timestamp.
        return {
          offset: { '!': 'timestamp', value: Math.floor(from.timestamp / 1000) - 1 },
          since: from.timestamp,
        };
    }
  }

  private onEntry(channel: Channel, filter: StartFilter, msg: ConsumeMessage | null): void {
    if (msg === null) {
      // The broker cancelled the consumer (the stream was deleted): declare it again, start over.
      this.ctx.topology.clear();
      closeQuietly(channel);
      return;
    }
    const offset = Number(headerText(msg.properties.headers?.['x-stream-offset']));
    const decoded = decode(msg);
    if (this.stopped || !Number.isInteger(offset) || !filter.accepts(offset, decoded.timestamp)) {
      ack(channel, msg);
      return;
    }
    this.tracker ??= new OffsetTracker(offset);
    const tracker = this.tracker;
    tracker.delivered(offset);
    const delivery: Delivery = {
      id: decoded.id,
      body: decoded.body,
      headers: decoded.headers,
      key: decoded.key,
      subject: decoded.subject,
      timestamp: decoded.timestamp,
      redelivered: false,
      position: { partition: 0, offset },
      raw: msg,
      ack: async () => {
        ack(channel, msg);
        if (tracker.finish(offset) && tracker === this.tracker) this.group?.progressed();
      },
    };
    void this.deliver(delivery);
  }

  private lostChannel(): void {
    if (this.tracker !== undefined) this.resumeAt = this.tracker.committable;
    this.channel = undefined;
    this.consumerTag = undefined;
    this.model = undefined;
  }

  /** Standing by in a group: try to take over now and then. */
  private waitForTakeover(): void {
    if (this.standby !== undefined || this.stopped) return;
    this.standby = setInterval(() => {
      const model = this.ctx.session.model;
      if (model === undefined || this.stopped || this.model !== undefined) return;
      this.cancelStandby();
      this.attach(model).catch((error: unknown) => {
        this.ctx.session.reattach(this, error instanceof Error ? error : undefined);
      });
    }, this.settings.groupTakeoverMs);
    this.standby.unref();
  }

  private cancelStandby(): void {
    if (this.standby !== undefined) clearInterval(this.standby);
    this.standby = undefined;
  }
}

/** Skips entries before the start: a stream consumer starts at a chunk, which may begin earlier. */
class StartFilter {
  private open = false;
  constructor(private readonly start: { from?: number; since?: number }) {}

  accepts(offset: number, timestamp: number): boolean {
    if (this.open) return true;
    if (this.start.from !== undefined && offset < this.start.from) return false;
    if (this.start.since !== undefined && timestamp < this.start.since) return false;
    this.open = true;
    return true;
  }
}

/** A group's lock and committed offset. */
class Group {
  private readonly lock: string;
  private readonly offsets: string;
  /** This group's lock among the readers of this process (the broker URL tells vhosts apart). */
  private readonly localKey: string;
  private holding = false;
  private committed: number | undefined;
  private timer: NodeJS.Timeout | undefined;
  private chain: Promise<void> = Promise.resolve();

  constructor(
    private readonly ctx: ConsumeContext,
    private readonly settings: Settings,
    log: string,
    group: string,
    private readonly position: () => number | undefined,
  ) {
    this.lock = groupQueueName('lock', log, group);
    this.offsets = groupQueueName('offsets', log, group);
    this.localKey = `${settings.redacted} ${this.lock}`;
  }

  /** Takes the group's lock when no other reader holds it. */
  async acquire(): Promise<boolean> {
    if (this.holding) return true;
    if (localLocks.has(this.localKey)) return false;
    localLocks.add(this.localKey);
    try {
      await this.ctx.session.withChannel((ch) =>
        ch.assertQueue(this.lock, { exclusive: true, durable: false, autoDelete: false }),
      );
      this.holding = true;
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
      return msg === false ? undefined : msg.content.toString('utf8');
    });
    if (stored === undefined) return this.committed;
    const offset = parseOffset(stored);
    const value = typeof offset === 'number' && Number.isInteger(offset) && offset >= 0 ? offset : undefined;
    if (value !== undefined && (this.committed === undefined || value > this.committed))
      this.committed = value;
    return this.committed;
  }

  /** A handler finished and the committable offset moved: commit soon. */
  progressed(): void {
    if (this.timer !== undefined || !this.holding) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.commit().catch(() => undefined);
    }, this.settings.commitIntervalMs);
    this.timer.unref();
  }

  /** The connection is gone, and the exclusive lock queue with it. */
  lost(): void {
    if (this.holding) localLocks.delete(this.localKey);
    this.holding = false;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
  }

  release(): void {
    if (!this.holding) return;
    this.lost();
    void this.ctx.session.withChannel((ch) => ch.deleteQueue(this.lock)).catch(() => undefined);
  }

  async close(): Promise<void> {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    if (!this.holding) return;
    await this.commit().catch(() => undefined);
    this.release();
  }

  /** Commits the first unfinished offset, one commit at a time, never backwards. */
  commit(): Promise<void> {
    // A failed commit (the connection dropped) must not stop the later ones.
    this.chain = this.chain
      .catch(() => undefined)
      .then(async () => {
        const offset = this.position();
        if (
          !this.holding ||
          offset === undefined ||
          (this.committed !== undefined && offset <= this.committed)
        )
          return;
        const body = Buffer.from(
          JSON.stringify({ offset, at: new Date().toISOString(), by: this.ctx.session.clientId }),
        );
        await this.ctx.publisher.publish(
          '',
          this.offsets,
          body,
          { persistent: true, contentType: 'application/json' },
          true,
        );
        this.committed = offset;
      });
    return this.chain;
  }
}

function parseOffset(text: string): unknown {
  try {
    return (JSON.parse(text) as { offset?: unknown } | null)?.offset;
  } catch {
    return undefined;
  }
}

function ack(channel: Channel, msg: ConsumeMessage): void {
  try {
    channel.ack(msg);
  } catch {
    // The channel is gone: for a stream, an ack only grants credit.
  }
}
