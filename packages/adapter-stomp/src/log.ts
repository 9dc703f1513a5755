/**
 * Logs on RabbitMQ stream queues over STOMP: `/queue/<name>` declared with `x-queue-type: stream`,
 * read with `x-stream-offset` (offsets are positions; one stream is one partition).
 *
 * STOMP's RECEIPT says a message is stored but not at which offset, so `append` learns it with
 * core's `ReadBack`: a reader of the log from 'latest' (a `StreamReader`) whose entries' reference
 * headers resolve the appends waiting for them.
 */
import { CONFIRMED, type Deliver, type LogSpec, LogStart, type ReadSpec } from '@omnibus/core';
import { StompConsumer } from './consume.js';
import type { BrokerProfile } from './profiles.js';
import type { FrameHeaders } from './stompit.js';
import { FrameDelivery } from './wire.js';

export const STREAM = { 'x-queue-type': 'stream' } as const;

/** Reads one stream from `from`, in offset order; after a reconnection it resumes after the last delivery. */
export class StreamReader extends StompConsumer {
  private lastDelivered: number | undefined;
  private readonly from: LogStart;

  constructor(profile: BrokerProfile, log: LogSpec, spec: ReadSpec, deliver: Deliver) {
    super(profile, { subscribe: { destination: `/queue/${log.name}`, ...STREAM } }, deliver);
    this.from = new LogStart(spec.from, `log "${log.name}" (one RabbitMQ stream over STOMP)`, 'stomp');
  }

  protected override resubscribing(): Record<string, string> {
    const at = this.from.next(this.lastDelivered === undefined ? undefined : this.lastDelivered + 1);
    if (typeof at === 'string') return { 'x-stream-offset': at };
    return { 'x-stream-offset': 'offset' in at ? `offset=${at.offset}` : `timestamp=${at.seconds}` };
  }

  protected override onMessage(frame: FrameHeaders, body: Buffer, settle: (command: 'ACK') => void): void {
    const offset = Number(frame['x-stream-offset']);
    const entry = new StreamEntry(frame, body, offset, settle);
    // Chunk granularity and redelivery after a reconnection: skip what is before the start.
    if (this.stopping || !Number.isInteger(offset) || offset < 0 || !this.from.accepts(offset, entry)) {
      settle('ACK');
      return;
    }
    this.lastDelivered = offset;
    void this.deliver(entry);
  }
}

/** An entry of the stream at `offset`; its ACK lets the broker's credit move on. */
class StreamEntry extends FrameDelivery {
  constructor(
    frame: FrameHeaders,
    body: Buffer,
    offset: number,
    private readonly settle: (command: 'ACK') => void,
  ) {
    super(frame, body, false);
    this.position = { partition: 0, offset };
  }

  ack(): Promise<void> {
    this.settle('ACK');
    return CONFIRMED;
  }
}
