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
import type { Lifecycle, LogPosition, OutgoingMessage } from '@omnibus/core';
import { ClosedError, HEADER } from '@omnibus/core';
import type { Channel, ChannelModel, ConsumeMessage } from 'amqplib';
import { attachConsumer, type ConsumeContext, quietly } from './consume.js';
import { asBuffer, headerText, publishOptions } from './message.js';
import { ADAPTER } from './options.js';

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
      const options = publishOptions(message, false, { [HEADER.appendRef]: ref });
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
class ReadBack {
  private readonly waiting = new Map<string, { resolve(offset: number): void; reject(error: Error): void }>();
  lifecycle: Lifecycle<ChannelModel> | undefined;
  private starting: Promise<void> | undefined;
  /** Highest offset seen: after a reconnection, reading resumes right after it. */
  private lastSeen: number | undefined;
  /** When reading started, to resume by time when nothing was seen yet. */
  private startedAt: number | undefined;
  private idle: NodeJS.Timeout | undefined;
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
    if (this.lifecycle?.current !== undefined) return;
    // Not attached (yet, or any more, while reconnecting): start over on the live connection.
    this.starting ??= this.restart().finally(() => {
      this.starting = undefined;
    });
    await this.starting;
  }

  expect(ref: string): Promise<number> {
    return new Promise<number>((resolve, reject) => this.waiting.set(ref, { resolve, reject }));
  }

  forget(ref: string): void {
    this.waiting.delete(ref);
  }

  close(): void {
    for (const waiter of this.waiting.values()) {
      waiter.reject(
        new ClosedError(`appending to "${this.log}": the connection is closing`, { adapter: ADAPTER }),
      );
    }
    this.waiting.clear();
    if (this.idle !== undefined) clearTimeout(this.idle);
    void this.lifecycle?.close();
    this.lifecycle = undefined;
    this.onClose();
  }

  private async restart(): Promise<void> {
    const old = this.lifecycle;
    this.lifecycle = undefined;
    await old?.close();
    this.lifecycle = await this.ctx.session.subscribe((model) =>
      attachConsumer(this.ctx, model, this, {
        what: `reading back the entries of log "${this.log}"`,
        prefetch: READ_BACK_PREFETCH,
        prepare: async () => {
          const from =
            this.lastSeen !== undefined
              ? this.lastSeen + 1
              : this.startedAt !== undefined
                ? // Entries confirmed before the connection dropped may not have been read back yet.
                  { '!': 'timestamp', value: Math.floor(this.startedAt / 1000) - 1 }
                : 'next';
          this.startedAt ??= Date.now();
          this.unacked = 0;
          return { queue: this.log, arguments: { 'x-stream-offset': from } };
        },
        onMessage: (channel, msg) => this.onEntry(channel, msg),
      }),
    );
  }

  private onEntry(channel: Channel, msg: ConsumeMessage): void {
    // For a stream an ack only grants credit: one ack for every ACK_EVERY entries, all up to it,
    // keeps the credit flowing with a fraction of the frames.
    if (++this.unacked >= ACK_EVERY) {
      this.unacked = 0;
      // The channel may have closed under us: the entry will be read again from lastSeen.
      quietly(() => channel.ack(msg, true));
    }
    const offset = Number(headerText(msg.properties.headers?.['x-stream-offset']));
    if (!Number.isInteger(offset)) return;
    if (this.lastSeen === undefined || offset > this.lastSeen) this.lastSeen = offset;
    const ref = headerText(msg.properties.headers?.[HEADER.appendRef]);
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
      if (this.waiting.size === 0 && this.starting === undefined) this.close();
      else this.touch();
    }, IDLE_MS);
    this.idle.unref();
  }
}
