/**
 * Appending to a log (a stream queue) and learning the entry's offset. RabbitMQ confirms a publish
 * without saying where it landed (AMQP 0-9-1 confirms carry delivery tags; the stream protocol's
 * carry publishing ids — neither an offset). So the appender reads its own entries back: one stream
 * consumer per log per connection, attached before the first append, matches each delivered entry's
 * reference header to the append waiting for it, and that append resolves with the entry's
 * `x-stream-offset` once the publish is confirmed too. The cost: every entry appended to that log
 * while the appender is active (by anyone) crosses the network once more, to the appender. The
 * read-back consumer stops after a few idle seconds and starts again on the next append.
 */
import { randomBytes } from 'node:crypto';
import type { LogPosition, OutgoingMessage } from '@omnibus/core';
import { ClosedError } from '@omnibus/core';
import type { Channel, ChannelModel, ConsumeMessage } from 'amqplib';
import type { ConsumeContext } from './consume.js';
import { asBuffer, headerText, PRIVATE_HEADER, publishOptions } from './message.js';
import { ADAPTER } from './options.js';
import { type Attachable, AttachOnce, closeQuietly, openChannel, subscribeError } from './session.js';

const IDLE_MS = 5_000;
const READ_BACK_PREFETCH = 1000;
const ACK_EVERY = 100;

export class Appender {
  private readonly trackers = new Map<string, ReadBack>();
  private readonly prefix = `${randomBytes(6).toString('hex')}.`;
  private sequence = 0;

  constructor(private readonly ctx: ConsumeContext) {}

  async append(log: string, message: OutgoingMessage): Promise<LogPosition> {
    await this.ctx.topology.stream(log);
    let tracker = this.trackers.get(log);
    if (tracker === undefined) {
      tracker = new ReadBack(this.ctx, log, () => this.trackers.delete(log));
      this.trackers.set(log, tracker);
    }
    await tracker.ready();
    const ref = `${this.prefix}${++this.sequence}`;
    const offset = tracker.expect(ref);
    try {
      const options = publishOptions(message, { [PRIVATE_HEADER.ref]: ref });
      await this.ctx.publisher.publish('', log, asBuffer(message.body), options, true);
    } catch (error) {
      tracker.forget(ref);
      throw error;
    }
    return { partition: 0, offset: await offset };
  }

  close(): void {
    for (const tracker of this.trackers.values()) tracker.close();
    this.trackers.clear();
  }
}

/** The read-back consumer of one log. */
class ReadBack implements Attachable {
  private readonly once = new AttachOnce();
  private readonly waiting = new Map<string, { resolve(offset: number): void; reject(error: Error): void }>();
  private channel: Channel | undefined;
  private model: ChannelModel | undefined;
  private attaching: Promise<void> | undefined;
  /** Highest offset seen: after a reconnection, reading resumes right after it. */
  private lastSeen: number | undefined;
  /** When reading started, to resume by time when nothing was seen yet. */
  private startedAt: number | undefined;
  private idle: NodeJS.Timeout | undefined;
  private closed = false;
  /** Entries read back since the last ack. */
  private unacked = 0;

  constructor(
    private readonly ctx: ConsumeContext,
    private readonly log: string,
    private readonly onClose: () => void,
  ) {}

  /** Resolves once the consumer is attached, so every later append is read back. */
  async ready(): Promise<void> {
    this.touch();
    const model = this.ctx.session.require();
    if (this.model === model && this.channel !== undefined) return;
    if (this.attaching === undefined) {
      this.ctx.session.remove(this);
      this.attaching = this.ctx.session.add(this).finally(() => {
        this.attaching = undefined;
      });
    }
    await this.attaching;
  }

  expect(ref: string): Promise<number> {
    return new Promise<number>((resolve, reject) => this.waiting.set(ref, { resolve, reject }));
  }

  forget(ref: string): void {
    this.waiting.delete(ref);
  }

  attach(model: ChannelModel): Promise<void> {
    return this.once.run(model, () => this.open(model));
  }

  private async open(model: ChannelModel): Promise<void> {
    if (this.closed || this.model === model) return;
    const what = `reading back the entries of log "${this.log}"`;
    const channel = await openChannel(model, what);
    channel.on('error', () => undefined);
    channel.on('close', () => {
      if (this.channel !== channel) return;
      this.channel = undefined;
      this.model = undefined;
      if (!this.closed) this.ctx.session.reattach(this, undefined);
    });
    try {
      await channel.prefetch(READ_BACK_PREFETCH);
      const from =
        this.lastSeen !== undefined
          ? this.lastSeen + 1
          : this.startedAt !== undefined
            ? // Entries confirmed before the connection dropped may not have been read back yet.
              { '!': 'timestamp', value: Math.floor(this.startedAt / 1000) - 1 }
            : 'next';
      this.startedAt ??= Date.now();
      this.unacked = 0;
      await channel.consume(this.log, (msg) => this.onEntry(channel, msg), {
        noAck: false,
        arguments: { 'x-stream-offset': from },
      });
      this.channel = channel;
      this.model = model;
    } catch (error) {
      closeQuietly(channel);
      throw subscribeError(what, error);
    }
  }

  detach(): void {
    this.channel = undefined;
    this.model = undefined;
  }

  close(): void {
    this.closed = true;
    for (const waiter of this.waiting.values()) {
      waiter.reject(
        new ClosedError(`appending to "${this.log}": the connection is closing`, { adapter: ADAPTER }),
      );
    }
    this.waiting.clear();
    if (this.idle !== undefined) clearTimeout(this.idle);
    this.ctx.session.remove(this);
    closeQuietly(this.channel);
    this.detach();
    this.onClose();
  }

  private onEntry(channel: Channel, msg: ConsumeMessage | null): void {
    if (msg === null) {
      closeQuietly(channel);
      return;
    }
    // For a stream an ack only grants credit: one ack for every ACK_EVERY entries, all up to it,
    // keeps the credit flowing with a fraction of the frames.
    if (++this.unacked >= ACK_EVERY) {
      this.unacked = 0;
      try {
        channel.ack(msg, true);
      } catch {
        // The channel closed under us: the entry will be read again from lastSeen.
      }
    }
    const offset = Number(headerText(msg.properties.headers?.['x-stream-offset']));
    if (!Number.isInteger(offset)) return;
    if (this.lastSeen === undefined || offset > this.lastSeen) this.lastSeen = offset;
    const ref = headerText(msg.properties.headers?.[PRIVATE_HEADER.ref]);
    if (ref === undefined) return;
    const waiter = this.waiting.get(ref);
    if (waiter === undefined) return;
    this.waiting.delete(ref);
    waiter.resolve(offset);
  }

  /** Stops reading back after a quiet spell with nothing waiting. */
  private touch(): void {
    if (this.idle !== undefined) clearTimeout(this.idle);
    this.idle = setTimeout(() => {
      this.idle = undefined;
      if (this.waiting.size === 0 && this.attaching === undefined) this.close();
      else this.touch();
    }, IDLE_MS);
    this.idle.unref();
  }
}
