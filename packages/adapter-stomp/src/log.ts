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
import { frameHeaders, received } from './wire.js';

const STREAM = { 'x-queue-type': 'stream' } as const;
const TAIL_PREFETCH = 1000;

function destination(log: LogSpec): string {
  return `/queue/${log.name}`;
}

/** A reader of a stream; `offset()` is asked at each (re)subscription, `message` gets each entry with its offset. */
function subscribeStream(
  session: StompSession,
  id: string,
  log: LogSpec,
  prefetch: number,
  offset: () => string,
  message: (frame: FrameHeaders, body: Buffer, offset: number, ack: () => void) => void,
  failed: (error: Error) => void,
): Promise<void> {
  return session.subscribe({
    id,
    what: `log "${log.name}"`,
    headers: () => ({
      destination: destination(log),
      ...STREAM,
      ack: 'client-individual',
      'prefetch-count': String(prefetch),
      'x-stream-offset': offset(),
    }),
    message: (frame, body, settle) => {
      const ack = () => settle('ACK');
      const at = Number(frame['x-stream-offset']);
      if (Number.isInteger(at) && at >= 0) message(frame, body, at, ack);
      else ack();
    },
    failed,
  });
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
    return subscribeStream(
      this.session,
      this.id,
      this.log,
      TAIL_PREFETCH,
      // After a reconnection the tail goes on right after the last offset it saw.
      () => (this.lastOffset === undefined ? 'next' : `offset=${this.lastOffset + 1}`),
      (frame, _body, offset, ack) => {
        ack();
        this.lastOffset = Math.max(offset, this.lastOffset ?? -1);
        const id = frame[HEADER.id];
        if (id !== undefined) this.waiting.get(String(id))?.(offset);
      },
      () => {
        this.ready = undefined;
      },
    );
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
    await subscribeStream(
      this.session,
      this.id,
      this.log,
      this.spec.prefetch,
      () => this.offsetSpec(),
      (frame, body, offset, ack) => this.onMessage(frame, body, offset, ack),
      this.reportError,
    );
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

  private onMessage(frame: FrameHeaders, body: Buffer, offset: number, ack: () => void): void {
    // Chunk granularity and redelivery after a reconnection: skip what is before the start or was delivered.
    const fields = received(frame, body, false);
    const early =
      this.notBefore !== undefined &&
      Number(fields.headers[HEADER.timestamp] ?? fields.timestamp) < this.notBefore;
    if (this.stopped || early || offset < this.startOffset || offset <= (this.lastDelivered ?? -1)) {
      ack();
      return;
    }
    this.notBefore = undefined;
    this.lastDelivered = offset;
    void this.deliver({ ...fields, position: { partition: 0, offset }, ack: async () => ack() });
  }
}
