/**
 * Queue and topic consumers: one SUBSCRIBE with `ack: client-individual` and a prefetch window, and
 * deliveries core settles: ACK; NACK where it puts the message back (RabbitMQ; on ActiveMQ a STOMP
 * NACK dead-letters at once, so there an unsettled message goes back when the consumer closes).
 * Retries and dead letters are core's: copies sent through `Adapter.sendTo`/`send`, then an ACK.
 *
 * Each consumer has its own connection, and closing the consumer closes it: a DISCONNECT is the only
 * portable way to give unacked messages back in STOMP. RabbitMQ keeps a cancelled subscription's
 * unacked messages on the connection and refuses to ACK or NACK them after UNSUBSCRIBE ("Subscription
 * not found"), and a NACK before the UNSUBSCRIBE may be redelivered to the same subscription. A
 * consumer's own connection also confines an ERROR frame to that consumer.
 */
import { CONFIRMED, type Deliver, type SubjectMatcher, type Subscription } from '@omnibus/core';
import type { BrokerProfile } from './profiles.js';
import type { OpenSession, SessionSubscription, StompSession } from './session.js';
import type { FrameHeaders } from './stompit.js';
import { FrameDelivery } from './wire.js';

/** Where a consumer subscribes and what it does with what arrives. */
export interface ConsumerRoute {
  /** SUBSCRIBE headers besides `ack` and the prefetch window (destination, durable, queue arguments…). */
  readonly subscribe: Readonly<Record<string, string>>;
  /** Where a copy reaches this consumer's source alone (`Delivery.retryAddress`), if anywhere. */
  readonly retryAddress?: string;
  /** Client-side subject filter, when the broker's match is broader than the pattern. */
  readonly filter?: SubjectMatcher | undefined;
  readonly subjectOf?: (destination: string) => string | undefined;
}

export class StompConsumer implements Subscription {
  private session: StompSession | undefined;
  /** Deliveries handed to core (or held) and not settled yet: each settles itself once. */
  readonly outstanding = new Set<StompDelivery>();
  stopping = false;
  private closing: Promise<void> | undefined;

  constructor(
    readonly profile: BrokerProfile,
    readonly route: ConsumerRoute,
    protected readonly deliver: Deliver,
  ) {}

  /** Subscribes on the connection `open` makes for it; `ended` is called once that is closed. */
  async start(what: string, prefetch: number, open: OpenSession, ended?: () => void): Promise<this> {
    const subscription: SessionSubscription = {
      what,
      headers: () => ({
        ...this.route.subscribe,
        ack: 'client-individual',
        ...this.profile.prefetchHeaders(prefetch),
        ...this.resubscribing(),
      }),
      message: (headers, body, settle) => this.onMessage(headers, body, settle),
    };
    this.session = await open(subscription, ended);
    return this;
  }

  /** More SUBSCRIBE headers, computed at each (re)subscription. */
  protected resubscribing(): Record<string, string> {
    return {};
  }

  async stop(): Promise<void> {
    this.stopping = true;
  }

  close(): Promise<void> {
    this.closing ??= (async () => {
      this.stopping = true;
      // The DISCONNECT (with a receipt: ACKs sent before it count) gives back every unacked message.
      for (const delivery of [...this.outstanding]) delivery.settle();
      await this.session?.close();
    })();
    return this.closing;
  }

  protected onMessage(frame: FrameHeaders, body: Buffer, send: (command: 'ACK' | 'NACK') => void): void {
    if (this.closing !== undefined) return;
    const delivery = this.profile.nackRequeues
      ? new RequeueableDelivery(frame, body, this, send)
      : new StompDelivery(frame, body, this, send);
    this.outstanding.add(delivery);
    // Broader broker match (ActiveMQ `>` for a `#` in the middle): not ours, done with it.
    if (this.route.filter !== undefined && !this.route.filter(delivery.subject)) {
      delivery.settle('ACK');
      return;
    }
    if (!this.stopping) void this.deliver(delivery);
  }
}

/** A queue or topic message: ACK, or (where the broker requeues on NACK) NACK; each once. */
class StompDelivery extends FrameDelivery {
  constructor(
    frame: FrameHeaders,
    body: Buffer,
    protected readonly consumer: StompConsumer,
    private readonly send: (command: 'ACK' | 'NACK') => void,
  ) {
    super(frame, body, consumer.profile.stableIds, consumer.route.subjectOf);
    this.retryAddress = consumer.route.retryAddress;
  }

  /** The ACK is written with the next frames of this tick: nothing to wait for. */
  ack(): Promise<void> {
    this.settle('ACK');
    return CONFIRMED;
  }

  /** Settles it once; without a command it is only forgotten (the DISCONNECT gives it back). */
  settle(command?: 'ACK' | 'NACK'): void {
    if (this.consumer.outstanding.delete(this) && command !== undefined) this.send(command);
  }
}

/**
 * Where a NACK puts the message back (RabbitMQ): core's `requeue`, and `release` for a consumer
 * giving back what it holds. Elsewhere (ActiveMQ dead-letters on NACK) there is no `release`: the
 * message stays unacked and the DISCONNECT in close() gives it back.
 */
class RequeueableDelivery extends StompDelivery {
  requeue(): Promise<void> {
    this.settle('NACK');
    return CONFIRMED;
  }

  /** Once stopping, the message is held and given back by the DISCONNECT in close(). */
  release(): void {
    if (!this.consumer.stopping) this.settle('NACK');
  }
}
