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
import type { Deliver, Delivery, SubjectMatcher, Subscription } from '@omnibus/core';
import type { BrokerProfile } from './profiles.js';
import type { OpenSession, SessionSubscription, StompSession } from './session.js';
import type { FrameHeaders } from './stompit.js';
import { received } from './wire.js';

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
  private readonly outstanding = new Set<(command?: 'ACK' | 'NACK') => void>();
  protected stopping = false;
  private closing: Promise<void> | undefined;

  constructor(
    protected readonly profile: BrokerProfile,
    private readonly route: ConsumerRoute,
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
      for (const settle of [...this.outstanding]) settle();
      await this.session?.close();
    })();
    return this.closing;
  }

  protected onMessage(frame: FrameHeaders, body: Buffer, send: (command: 'ACK' | 'NACK') => void): void {
    if (this.closing !== undefined) return;
    const settle = (command?: 'ACK' | 'NACK') => {
      if (this.outstanding.delete(settle) && command !== undefined) send(command);
    };
    this.outstanding.add(settle);
    const fields = received(frame, body, this.profile.stableIds, this.route.subjectOf);
    // Broader broker match (ActiveMQ `>` for a `#` in the middle): not ours, done with it.
    if (this.route.filter !== undefined && !this.route.filter(fields.subject)) {
      settle('ACK');
      return;
    }
    const { nackRequeues } = this.profile;
    const delivery: Delivery = {
      ...fields,
      retryAddress: this.route.retryAddress,
      ack: async () => settle('ACK'),
      ...(nackRequeues ? { requeue: async () => settle('NACK') } : {}),
      // Once stopping, the message is held and given back by the DISCONNECT in close().
      release: () => {
        if (nackRequeues && !this.stopping) settle('NACK');
      },
    };
    if (!this.stopping) void this.deliver(delivery);
  }
}
