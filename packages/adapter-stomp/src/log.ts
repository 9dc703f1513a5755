/**
 * Logs on RabbitMQ stream queues over STOMP: `/queue/<name>` declared with `x-queue-type: stream`,
 * read with `x-stream-offset` (offsets are positions; one stream is one partition).
 *
 * STOMP's RECEIPT says a message is stored but not at which offset. To return the position from
 * `append`, each adapter that appends to a log keeps one reader on its tail (`x-stream-offset: next`)
 * and waits for its own message id to come by: every appender receives every message appended to
 * that log while it is connected. That is the cost of positions over STOMP.
 */
import {
  type Deliver,
  HEADER,
  type LogPosition,
  type LogSpec,
  type OutgoingMessage,
  type ReadSpec,
  type Subscription,
  TimeoutError,
  ValidationError,
} from '@omnibus/core';
import type { StompSession } from './session.js';
import type { FrameHeaders } from './stompit.js';
import { frameHeaders, received, settleHeaders } from './wire.js';

const STREAM = { 'x-queue-type': 'stream' } as const;
const TAIL_PREFETCH = 1000;

function destination(log: LogSpec): string {
  return `/queue/${log.name}`;
}

function offsetOf(headers: FrameHeaders): number | undefined {
  const value = Number(headers['x-stream-offset']);
  return Number.isInteger(value) && value >= 0 ? value : undefined;
}

/** Appends to one stream and learns each message's offset from a reader on its tail. */
export class StreamAppender {
  private readonly id: string;
  private readonly waiting = new Map<string, (offset: number) => void>();
  private lastOffset: number | undefined;
  private ready: Promise<void> | undefined;

  constructor(
    private readonly session: StompSession,
    private readonly log: LogSpec,
    private readonly timeoutMs: number,
  ) {
    this.id = session.newId('tail');
  }

  async append(message: OutgoingMessage): Promise<LogPosition> {
    this.ready ??= this.startTail().catch((error: unknown) => {
      this.ready = undefined;
      throw error;
    });
    await this.ready;
    let timer: NodeJS.Timeout | undefined;
    const seen = new Promise<number>((resolve, reject) => {
      this.waiting.set(message.id, resolve);
      timer = setTimeout(
        () =>
          reject(
            new TimeoutError(
              `appended to "${this.log.name}" but its offset was not read back within ${this.timeoutMs} ms`,
              this.timeoutMs,
              { adapter: 'stomp' },
            ),
          ),
        this.timeoutMs,
      );
    });
    try {
      await this.session.send(
        { ...frameHeaders(destination(this.log), message), ...STREAM },
        message.body,
        `log "${this.log.name}"`,
      );
      return { partition: 0, offset: await seen };
    } finally {
      clearTimeout(timer);
      this.waiting.delete(message.id);
    }
  }

  async close(): Promise<void> {
    await this.session.unsubscribe(this.id);
  }

  private startTail(): Promise<void> {
    return this.session.subscribe({
      id: this.id,
      what: `log "${this.log.name}"`,
      // After a reconnection the tail goes on right after the last offset it saw.
      headers: () => ({
        destination: destination(this.log),
        ...STREAM,
        ack: 'client-individual',
        'prefetch-count': String(TAIL_PREFETCH),
        'x-stream-offset': this.lastOffset === undefined ? 'next' : `offset=${this.lastOffset + 1}`,
      }),
      message: (headers, _body, generation) => {
        this.session.ack(generation, settleHeaders(headers));
        const offset = offsetOf(headers);
        if (offset === undefined) return;
        this.lastOffset = Math.max(offset, this.lastOffset ?? -1);
        const id = headers[HEADER.id];
        if (id !== undefined) this.waiting.get(String(id))?.(offset);
      },
      failed: () => {
        this.ready = undefined;
      },
    });
  }
}

/** Reads one stream from `from`, in offset order; after a reconnection it resumes after the last delivery. */
export class StreamReader implements Subscription {
  private readonly id: string;
  private lastDelivered: number | undefined;
  private readonly startOffset: number;
  private notBefore: number | undefined;
  private stopped = false;

  constructor(
    private readonly session: StompSession,
    private readonly log: LogSpec,
    private readonly spec: ReadSpec,
    private readonly deliver: Deliver,
    private readonly reportError: (error: Error) => void,
  ) {
    this.id = session.newId('read');
    const from = spec.from;
    this.startOffset = 0;
    if (from.kind === 'positions') {
      const position = from.positions.find((p) => p.partition === 0);
      const others = from.positions.filter((p) => p.partition !== 0);
      if (position === undefined || others.length > 0) {
        throw new ValidationError(
          `log "${log.name}" is one RabbitMQ stream over STOMP: its only partition is 0`,
        );
      }
      this.startOffset = position.offset;
    }
    if (from.kind === 'timestamp') this.notBefore = from.timestamp;
  }

  async start(): Promise<this> {
    await this.session.subscribe({
      id: this.id,
      what: `log "${this.log.name}"`,
      headers: () => ({
        destination: destination(this.log),
        ...STREAM,
        ack: 'client-individual',
        'prefetch-count': String(this.spec.prefetch),
        'x-stream-offset': this.offsetSpec(),
      }),
      message: (headers, body, generation) => this.onMessage(headers, body, generation),
      failed: (error) => this.reportError(error),
    });
    return this;
  }

  async stop(): Promise<void> {
    this.stopped = true;
  }

  async close(): Promise<void> {
    this.stopped = true;
    await this.session.unsubscribe(this.id);
  }

  private offsetSpec(): string {
    if (this.lastDelivered !== undefined) return `offset=${this.lastDelivered + 1}`;
    const from = this.spec.from;
    switch (from.kind) {
      case 'earliest':
        return 'first';
      case 'latest':
        return 'next';
      case 'positions':
        return `offset=${this.startOffset}`;
      case 'timestamp':
        // Seconds, and the broker starts at the chunk holding that second: earlier messages are
        // skipped below by their own millisecond timestamp.
        return `timestamp=${Math.floor(from.timestamp / 1000)}`;
    }
  }

  private onMessage(headers: FrameHeaders, body: Buffer, generation: number): void {
    const offset = offsetOf(headers);
    const skip = () => this.session.ack(generation, settleHeaders(headers));
    if (offset === undefined || this.stopped) {
      skip();
      return;
    }
    // Chunk granularity and redelivery after a reconnection: skip what is before the start or was delivered.
    if (offset < this.startOffset || (this.lastDelivered !== undefined && offset <= this.lastDelivered)) {
      skip();
      return;
    }
    const fields = received(headers, body, false);
    if (this.notBefore !== undefined) {
      if (Number(fields.headers[HEADER.timestamp] ?? fields.timestamp) < this.notBefore) {
        skip();
        return;
      }
      this.notBefore = undefined;
    }
    this.lastDelivered = offset;
    const session = this.session;
    void this.deliver({
      ...fields,
      position: { partition: 0, offset },
      async ack() {
        session.ack(generation, settleHeaders(headers));
      },
    });
  }
}
