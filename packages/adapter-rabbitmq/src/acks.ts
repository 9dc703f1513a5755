/**
 * The acks of one consumer channel, coalesced. An ack is recorded and sent once the current tick's
 * work is done (`process.nextTick`, which runs after the promise jobs that settled it): the acks of
 * a run of consecutive delivery tags go out as one `basic.ack` with `multiple`, which the broker
 * reads as "every unsettled tag up to this one". So `multiple` is only used up to the first tag
 * still unsettled here: a message whose handler is running, or one that will be retried, is never
 * folded into another's ack. Acks beyond that tag go out one by one at the same flush, as before.
 * A NACK (requeue or release) goes out at once, on its own. `flush()` runs before the channel is
 * cancelled or closed; when the channel is lost, what was pending is dropped with it (the broker
 * redelivers those messages, as it did when each ack failed on a closed channel).
 *
 * Delivery tags on a channel count 1, 2, 3… for every delivery. Should a tag ever arrive out of
 * that sequence, this channel stops coalescing and acks each message on its own.
 */
import type { Channel, Message } from 'amqplib';

/** Delivered, not settled yet. */
const OUTSTANDING = 0;
/** Acked by its handler, the ack not sent yet. */
const ACK = 1;
/** Settled on the wire (acked, or NACKed). */
const SETTLED = 2;

export class Acks {
  /** `states[i]` is the state of tag `base + (i - head)`; every tag below `base` is settled on the wire. */
  private readonly states: number[] = [];
  private head = 0;
  private base = 1;
  /** Tags whose ack waits for the next flush. */
  private readonly pending: number[] = [];
  private scheduled = false;
  /** Tags out of sequence seen: ack one by one. */
  private individual = false;
  private lost = false;
  private readonly flushSoon = () => this.flush();

  constructor(private readonly channel: Channel) {}

  /** A delivery arrived on the channel. */
  delivered(tag: number): void {
    if (this.individual) return;
    if (tag !== this.base + this.states.length - this.head) {
      this.flush();
      this.individual = true;
      return;
    }
    this.states.push(OUTSTANDING);
  }

  /** Its handler acked `tag`: sent with the next flush. */
  ack(tag: number): void {
    if (this.lost) return;
    if (this.individual) {
      send(this.channel, tag, false);
      return;
    }
    const i = this.index(tag);
    // Settled already (a tag is never settled twice: the broker would close the channel).
    if (i === undefined || this.states[i] !== OUTSTANDING) return;
    this.states[i] = ACK;
    this.pending.push(tag);
    if (!this.scheduled) {
      this.scheduled = true;
      process.nextTick(this.flushSoon);
    }
  }

  /** NACKs `tag` now, on its own (`requeue`: back to the queue; the broker otherwise dead-letters or drops it). */
  nack(tag: number, requeue: boolean): void {
    if (this.lost) return;
    if (!this.individual) {
      const i = this.index(tag);
      if (i === undefined || this.states[i] !== OUTSTANDING) return;
      this.states[i] = SETTLED;
    }
    try {
      this.channel.nack(stub(tag), false, requeue);
    } catch {
      // The channel is gone with its deliveries.
    }
  }

  /** Sends the pending acks: one `multiple` ack for the settled run from the lowest tag, the rest one by one. */
  flush(): void {
    this.scheduled = false;
    if (this.pending.length === 0 || this.lost) return;
    const states = this.states;
    let i = this.head;
    let last = -1;
    let acks = 0;
    while (i < states.length && states[i] !== OUTSTANDING) {
      if (states[i] === ACK) {
        last = i;
        acks++;
      }
      i++;
    }
    if (last >= 0) send(this.channel, this.tagAt(last), acks > 1);
    const covered = this.tagAt(i);
    this.base = covered;
    this.head = i;
    for (const tag of this.pending) {
      if (tag < covered) continue;
      const at = this.index(tag)!;
      if (states[at] !== ACK) continue;
      states[at] = SETTLED;
      send(this.channel, tag, false);
    }
    this.pending.length = 0;
    if (this.head > 1024 && this.head * 2 > states.length) {
      states.splice(0, this.head);
      this.head = 0;
    }
  }

  /** The channel is gone with its deliveries: nothing left to settle. */
  close(): void {
    this.lost = true;
    this.pending.length = 0;
  }

  /** The index of a tracked tag not settled on the wire yet. */
  private index(tag: number): number | undefined {
    const i = this.head + (tag - this.base);
    return i >= this.head && i < this.states.length ? i : undefined;
  }

  private tagAt(i: number): number {
    return this.base + (i - this.head);
  }
}

/** amqplib's ack and nack read only the delivery tag. */
function stub(tag: number): Message {
  return { fields: { deliveryTag: tag } } as Message;
}

/** A closed channel throws: its deliveries went back to the broker, nothing to settle. */
function send(channel: Channel, tag: number, multiple: boolean): void {
  try {
    channel.ack(stub(tag), multiple);
  } catch {
    // The channel is gone with its deliveries.
  }
}
