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
  withTimeout,
} from '@omnibus/core';
import type { OpenSession, SessionSubscription, StompSession } from './session.js';
import type { FrameHeaders } from './stompit.js';
import { frameHeaders, received } from './wire.js';

const STREAM = { 'x-queue-type': 'stream' } as const;
const TAIL_PREFETCH = 1000;

/** A reader of a stream; `offset()` is asked at each (re)subscription, `message` gets each entry with its offset. */
function streamSubscription(
  log: LogSpec,
  prefetch: number,
  offset: () => string,
  message: (frame: FrameHeaders, body: Buffer, offset: number, ack: () => void) => void,
): SessionSubscription {
  return {
    what: `log "${log.name}"`,
    headers: () => ({
      destination: `/queue/${log.name}`,
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
  };
}

/** Appends to one stream (on the bus's connection) and learns each message's offset from a reader on its tail. */
export class StreamAppender {
  private readonly waiting = new Map<string, (offset: number) => void>();
  private lastOffset: number | undefined;
  /** The tail's connection: opened on first use, and again once closed (a failed open, a dropped subscription). */
  private tail: Promise<StompSession> | undefined;

  constructor(
    private readonly session: StompSession,
    private readonly log: LogSpec,
    private readonly timeoutMs: number,
    private readonly open: OpenSession,
  ) {}

  async append(message: OutgoingMessage): Promise<LogPosition> {
    await this.startTail();
    const seen = new Promise<number>((resolve) => this.waiting.set(message.id, resolve));
    const late = () =>
      new TimeoutError(
        `appended to "${this.log.name}" but its offset was not read back within ${this.timeoutMs} ms`,
        this.timeoutMs,
        { adapter: 'stomp' },
      );
    try {
      const headers = { ...frameHeaders(`/queue/${this.log.name}`, message), ...STREAM };
      await this.session.send(headers, message.body, `log "${this.log.name}"`);
      return { partition: 0, offset: await withTimeout(seen, this.timeoutMs, late) };
    } finally {
      this.waiting.delete(message.id);
    }
  }

  private startTail(): Promise<StompSession> {
    if (this.tail !== undefined) return this.tail;
    const subscription = streamSubscription(
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
    );
    const tail = this.open(subscription, () => {
      if (this.tail === tail) this.tail = undefined;
    });
    this.tail = tail;
    return tail;
  }
}

/** Reads one stream from `from`, in offset order; after a reconnection it resumes after the last delivery. */
export class StreamReader implements Subscription {
  private session: StompSession | undefined;
  private lastDelivered: number | undefined;
  private readonly startOffset: number = 0;
  private notBefore: number | undefined;
  private stopped = false;

  constructor(
    private readonly log: LogSpec,
    private readonly spec: ReadSpec,
    private readonly deliver: Deliver,
  ) {
    const from = spec.from;
    if (from.kind === 'positions') {
      const position = from.positions.find((p) => p.partition === 0);
      if (position === undefined || from.positions.some((p) => p.partition !== 0)) {
        throw new ValidationError(
          `log "${log.name}" is one RabbitMQ stream over STOMP: its only partition is 0`,
        );
      }
      this.startOffset = position.offset;
    }
    if (from.kind === 'timestamp') this.notBefore = from.timestamp;
  }

  async start(open: OpenSession): Promise<this> {
    this.session = await open(
      streamSubscription(
        this.log,
        this.spec.prefetch,
        () => this.offsetSpec(),
        (frame, body, offset, ack) => this.onMessage(frame, body, offset, ack),
      ),
    );
    return this;
  }

  async stop(): Promise<void> {
    this.stopped = true;
  }

  async close(): Promise<void> {
    this.stopped = true;
    await this.session?.close();
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
