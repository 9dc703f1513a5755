/**
 * Logs on RabbitMQ stream queues over STOMP: `/queue/<name>` declared with `x-queue-type: stream`,
 * read with `x-stream-offset` (offsets are positions; one stream is one partition).
 *
 * STOMP's RECEIPT says a message is stored but not at which offset, so `append` learns it with
 * core's `ReadBack`: a reader of the log from 'latest' (a `StreamReader`) whose entries' reference
 * headers resolve the appends waiting for them.
 */
import { type Deliver, LogStart, type LogSpec, type ReadSpec, type Subscription } from '@omnibus/core';
import type { OpenSession, StompSession } from './session.js';
import type { FrameHeaders } from './stompit.js';
import { received } from './wire.js';

export const STREAM = { 'x-queue-type': 'stream' } as const;

/** Reads one stream from `from`, in offset order; after a reconnection it resumes after the last delivery. */
export class StreamReader implements Subscription {
  private session: StompSession | undefined;
  private lastDelivered: number | undefined;
  private readonly from: LogStart;
  private stopped = false;

  /** `ended`: its connection closed (by `close`, or after its subscription was dropped). */
  constructor(
    private readonly log: LogSpec,
    private readonly spec: ReadSpec,
    private readonly deliver: Deliver,
    private readonly ended?: () => void,
  ) {
    this.from = new LogStart(spec.from, `log "${log.name}" (one RabbitMQ stream over STOMP)`, 'stomp');
  }

  async start(open: OpenSession): Promise<this> {
    this.session = await open(
      {
        what: `log "${this.log.name}"`,
        headers: () => ({
          destination: `/queue/${this.log.name}`,
          ...STREAM,
          ack: 'client-individual',
          'prefetch-count': String(this.spec.prefetch),
          'x-stream-offset': this.offsetSpec(),
        }),
        message: (frame, body, settle) => this.onMessage(frame, body, () => settle('ACK')),
      },
      this.ended,
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
    const at = this.from.next(this.lastDelivered === undefined ? undefined : this.lastDelivered + 1);
    if (typeof at === 'string') return at;
    return 'offset' in at ? `offset=${at.offset}` : `timestamp=${at.seconds}`;
  }

  private onMessage(frame: FrameHeaders, body: Buffer, ack: () => void): void {
    const offset = Number(frame['x-stream-offset']);
    const fields = received(frame, body, false);
    // Chunk granularity and redelivery after a reconnection: skip what is before the start.
    if (this.stopped || !Number.isInteger(offset) || offset < 0 || !this.from.accepts(offset, fields)) {
      ack();
      return;
    }
    this.lastDelivered = offset;
    void this.deliver({ ...fields, position: { partition: 0, offset }, ack: async () => ack() });
  }
}
