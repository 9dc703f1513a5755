/**
 * Queue and topic consumers: one SUBSCRIBE with `ack: client-individual`, an ACK after the handler,
 * and the settlements core asks for, the same on every broker:
 * - retry: a copy with the new `x-omnibus-attempt` is SENT (with a receipt) where the message came
 *   from, then the original is ACKed. Broker NACK semantics differ (RabbitMQ requeues forever,
 *   ActiveMQ dead-letters at once), so `attempt` and `maxAttempts` never depend on them.
 * - dead-letter: a copy is SENT to the dead-letter queue, then the original is ACKed.
 * - requeue/release: RabbitMQ NACKs (puts back); elsewhere the message stays unacked until the
 *   consumer closes.
 *
 * Each consumer has its own connection, and closing the consumer closes it: a DISCONNECT is the only
 * portable way to give unacked messages back in STOMP. RabbitMQ keeps a cancelled subscription's
 * unacked messages on the connection and refuses to ACK or NACK them after UNSUBSCRIBE ("Subscription
 * not found"), and a NACK before the UNSUBSCRIBE may be redelivered to the same subscription. A
 * consumer's own connection also confines an ERROR frame to that consumer.
 */
import type {
  Deliver,
  Delivery,
  Headers,
  OutgoingMessage,
  SubjectMatcher,
  Subscription,
} from '@omnibus/core';
import type { BrokerProfile } from './profiles.js';
import { type SessionSubscription, type StompSession, sleep } from './session.js';
import type { FrameHeaders } from './stompit.js';
import { type IncomingMessage, readMessage, sendHeaders, settleHeaders } from './wire.js';

/** Where a retried copy goes: the queue itself, or (RabbitMQ topics) the subscription's own queue. */
export interface RetryTarget {
  readonly destination: string;
  readonly headers: Readonly<Record<string, string>>;
}

export interface ConsumerSetup {
  readonly session: StompSession;
  readonly profile: BrokerProfile;
  /** For errors, e.g. `queue "orders"`. */
  readonly what: string;
  /** SUBSCRIBE headers besides `ack` and the prefetch window (destination, durable, queue arguments…). */
  readonly subscribe: Readonly<Record<string, string>>;
  readonly prefetch: number;
  /** Client-side subject filter, when the broker's match is broader than the pattern. */
  readonly filter: SubjectMatcher | undefined;
  readonly subjectOf: ((destination: string) => string | undefined) | undefined;
  /** Where retries go; without it, core retries in the process. */
  readonly retry: RetryTarget | undefined;
  /** Headers that delay a SEND natively (ActiveMQ's scheduler), or undefined. */
  readonly delayHeaders: ((delayMs: number) => Record<string, string>) | undefined;
  /** SEND destination and headers for a dead-letter queue. */
  readonly deadLetterTarget: (queue: string) => RetryTarget;
  readonly deliver: Deliver;
  readonly reportError: (error: Error) => void;
  /** Called once closed. */
  readonly onClose?: () => void;
}

export class StompConsumer implements Subscription {
  private readonly id: string;
  /** Deliveries handed to core (or held) and not settled yet. */
  readonly outstanding = new Set<StompDelivery>();
  stopping = false;
  private closed = false;
  /** Aborted by `stop()`: a retry waiting out its delay in the process sends its copy at once. */
  readonly stopSignal = new AbortController();

  constructor(readonly setup: ConsumerSetup) {
    this.id = setup.session.newId('sub');
  }

  async start(): Promise<this> {
    const { setup } = this;
    const subscription: SessionSubscription = {
      id: this.id,
      what: setup.what,
      headers: () => ({
        ...setup.subscribe,
        ack: 'client-individual',
        ...setup.profile.prefetchHeaders(setup.prefetch),
      }),
      message: (headers, body, generation) => this.onMessage(headers, body, generation),
      failed: (error) => setup.reportError(error),
    };
    await setup.session.subscribe(subscription);
    return this;
  }

  async stop(): Promise<void> {
    this.stopping = true;
    this.stopSignal.abort();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.stop();
    // The DISCONNECT (with a receipt: ACKs sent before it count) gives back every unacked message.
    for (const delivery of [...this.outstanding]) delivery.forget();
    await this.setup.session.close();
    this.setup.onClose?.();
  }

  private onMessage(headers: FrameHeaders, body: Buffer, generation: number): void {
    const delivery = new StompDelivery(this, headers, body, generation);
    if (this.closed) return;
    if (this.setup.filter !== undefined && !this.setup.filter(delivery.subject)) {
      // Broader broker match (ActiveMQ `>` for a `#` in the middle): not ours, done with it.
      delivery.ack().catch(() => undefined);
      return;
    }
    this.outstanding.add(delivery);
    // Once stopping, new deliveries are held and given back at close.
    if (!this.stopping) void this.setup.deliver(delivery);
  }
}

class StompDelivery implements Delivery {
  readonly id: string;
  readonly body: Uint8Array;
  readonly headers: Headers;
  readonly key: string | undefined;
  readonly subject: string | undefined;
  readonly priority: number | undefined;
  readonly timestamp: number;
  readonly redelivered: boolean;
  readonly raw: { readonly headers: FrameHeaders; readonly body: Buffer };
  private settled = false;
  private readonly message: IncomingMessage;
  retry?: NonNullable<Delivery['retry']>;
  requeue?: NonNullable<Delivery['requeue']>;

  constructor(
    private readonly consumer: StompConsumer,
    private readonly frame: FrameHeaders,
    body: Buffer,
    private readonly generation: number,
  ) {
    const m = readMessage(frame, consumer.setup.subjectOf);
    this.message = m;
    this.id = m.id;
    this.body = body;
    this.headers = m.headers;
    this.key = m.key;
    this.subject = m.subject;
    this.priority = m.priority;
    this.timestamp = m.timestamp;
    this.redelivered = m.redelivered;
    this.raw = { headers: frame, body };
    const target = consumer.setup.retry;
    if (target !== undefined) this.retry = (options) => this.retryTo(target, options);
    if (consumer.setup.profile.nackRequeues) this.requeue = async () => this.nack();
  }

  async ack(): Promise<void> {
    if (this.take()) this.consumer.setup.session.ack(this.generation, settleHeaders(this.frame));
  }

  async deadLetter(options: { readonly destination: string; readonly headers: Headers }): Promise<void> {
    if (this.settled) return;
    const target = this.consumer.setup.deadLetterTarget(options.destination);
    await this.copyTo(target, options.headers, undefined);
    await this.ack();
  }

  release(): void {
    // During shutdown the message is held and given back by the DISCONNECT in close().
    if (this.consumer.setup.profile.nackRequeues && !this.consumer.stopping) this.nack();
  }

  /** The connection is closing: the broker takes the message back; later settlements do nothing. */
  forget(): void {
    this.take();
  }

  private nack(): void {
    if (this.take()) this.consumer.setup.session.nack(this.generation, settleHeaders(this.frame));
  }

  private take(): boolean {
    if (this.settled) return false;
    this.settled = true;
    this.consumer.outstanding.delete(this);
    return true;
  }

  private async retryTo(
    target: RetryTarget,
    options: { readonly delayMs: number; readonly headers: Headers },
  ): Promise<void> {
    const { delayHeaders } = this.consumer.setup;
    let delay: Record<string, string> | undefined;
    if (options.delayMs > 0) {
      if (delayHeaders !== undefined) delay = delayHeaders(options.delayMs);
      // No broker delay: wait here, holding the message (it counts against prefetch), unless the
      // consumer is stopping, when the copy goes at once so the attempt count stays exact.
      else await sleep(options.delayMs, this.consumer.stopSignal.signal);
    }
    if (this.settled) return;
    await this.copyTo(target, options.headers, delay);
    await this.ack();
  }

  /** SENDs a copy of this message (receipted). */
  private async copyTo(target: RetryTarget, headers: Headers, extra: Record<string, string> | undefined) {
    const m = this.message;
    const outgoing: OutgoingMessage = {
      id: m.id,
      body: this.body,
      headers,
      contentType: String(this.frame['content-type'] ?? 'application/octet-stream'),
      timestamp: m.timestamp,
      ...(m.key === undefined ? {} : { key: m.key }),
      ...(m.subject === undefined ? {} : { subject: m.subject }),
    };
    const frame = { ...sendHeaders(target.destination, outgoing), ...target.headers, ...extra };
    if (m.priority !== undefined) frame.priority = String(m.priority);
    await this.consumer.setup.session.send(frame, this.body, this.consumer.setup.what);
  }
}
