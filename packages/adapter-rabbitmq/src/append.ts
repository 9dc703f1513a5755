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
import type { Delivery, LogPosition, OutgoingMessage, Subscription } from '@omnibus/core';
import { ClosedError, HEADER } from '@omnibus/core';
import type { ConsumeContext } from './consume.js';
import { asBuffer, publishOptions } from './message.js';
import { ADAPTER } from './options.js';
import { readLog } from './reader.js';

const IDLE_MS = 5_000;
const READ_BACK_PREFETCH = 1000;
/** The read-back finishes entries in order, so it grants credit a hundred entries at a time. */
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
      tracker = new ReadBack(log, () => this.trackers.delete(log));
      this.trackers.set(log, tracker);
    }
    await tracker.ready(this.ctx);
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

/**
 * The read-back of one log: a reader from 'latest', started before the first append. After a
 * reconnection it resumes where it was (or, with nothing read yet, from when it started), so an
 * entry confirmed just before an outage still gets its offset.
 */
class ReadBack {
  private readonly waiting = new Map<string, { resolve(offset: number): void; reject(error: Error): void }>();
  private reader: Promise<Subscription> | undefined;
  private idle: NodeJS.Timeout | undefined;

  constructor(
    private readonly log: string,
    private readonly onClose: () => void,
  ) {}

  /** Resolves once the reader is attached, so every later append is read back. */
  async ready(ctx: ConsumeContext): Promise<void> {
    this.touch();
    this.reader ??= readLog(
      ctx,
      { name: this.log, partitions: 1 },
      { prefetch: READ_BACK_PREFETCH, from: { kind: 'latest' } },
      async (entry) => this.onEntry(entry),
      ACK_EVERY,
    ).catch((error: unknown) => {
      this.reader = undefined;
      throw error;
    });
    await this.reader;
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
    void this.reader?.then((reader) => reader.close()).catch(() => undefined);
    this.reader = undefined;
    this.onClose();
  }

  private async onEntry(entry: Delivery): Promise<void> {
    await entry.ack();
    const ref = entry.headers[HEADER.appendRef];
    const waiter = ref === undefined ? undefined : this.waiting.get(ref);
    if (waiter === undefined || entry.position === undefined) return;
    this.waiting.delete(ref!);
    waiter.resolve(entry.position.offset);
  }

  /** Stops reading back after a quiet spell with nothing waiting. */
  private touch(): void {
    if (this.idle !== undefined) clearTimeout(this.idle);
    this.idle = setTimeout(() => {
      this.idle = undefined;
      if (this.waiting.size === 0) this.close();
      else this.touch();
    }, IDLE_MS);
    this.idle.unref();
  }
}
