/**
 * The message a handler gets: the delivery read through its envelope, decoded, with the settlement
 * methods. The first settlement wins; the engine decides what it leads to.
 */
import type { Delivery } from './adapter.js';
import type { Envelope } from './envelope.js';
import { describeError } from './errors.js';
import type { Headers, LogPosition, Message, RetryOptions } from './types.js';

/** A handler's outcome, as the engine settles it. */
export type Outcome =
  | { readonly type: 'ack' }
  | { readonly type: 'retry'; readonly delayMs: number | undefined; readonly reason: string }
  | { readonly type: 'reject'; readonly reason: string }
  | { readonly type: 'requeue' };

/** The ack outcome: one object for every message. */
export const ACK: Outcome = Object.freeze({ type: 'ack' });

/** Where a message's settlement goes: the engine's run of it. */
export interface Settler {
  settle(outcome: Outcome): Promise<void>;
}

export class ReceivedMessage<T> implements Message<T> {
  readonly id: string;
  readonly body: Uint8Array;
  readonly headers: Readonly<Headers>;
  readonly key?: string;
  readonly subject?: string;
  readonly priority?: number;
  readonly position?: LogPosition;
  readonly raw: unknown;
  private controller: AbortController | undefined;
  abortReason: Error | undefined;
  private isSettled = false;

  constructor(
    delivery: Delivery,
    envelope: Envelope,
    readonly contentType: string,
    readonly payload: T,
    readonly attempt: number,
    readonly redelivered: boolean,
    readonly destination: string,
    private readonly settler: Settler,
  ) {
    this.id = envelope.id;
    this.body = delivery.body;
    this.headers = envelope.headers;
    if (envelope.key !== undefined) this.key = envelope.key;
    if (envelope.subject !== undefined) this.subject = envelope.subject;
    if (envelope.priority !== undefined) this.priority = envelope.priority;
    if (delivery.position !== undefined) this.position = delivery.position;
    this.raw = delivery.raw;
    this.timestampMs = envelope.timestamp;
  }

  private readonly timestampMs: number;

  get timestamp(): Date {
    return new Date(this.timestampMs);
  }

  get settled(): boolean {
    return this.isSettled;
  }

  get signal(): AbortSignal {
    this.controller ??= new AbortController();
    if (this.abortReason !== undefined && !this.controller.signal.aborted)
      this.controller.abort(this.abortReason);
    return this.controller.signal;
  }

  abort(reason: Error): void {
    this.abortReason = reason;
    this.controller?.abort(reason);
  }

  ack(): Promise<void> {
    return this.settle(ACK);
  }

  retry(options: RetryOptions = {}): Promise<void> {
    return this.settle({
      type: 'retry',
      delayMs: options.delayMs,
      reason: options.reason === undefined ? 'retry requested by the handler' : describeError(options.reason),
    });
  }

  reject(reason?: string | Error): Promise<void> {
    return this.settle({
      type: 'reject',
      reason: reason === undefined ? 'rejected by the handler' : describeError(reason),
    });
  }

  requeue(): Promise<void> {
    return this.settle({ type: 'requeue' });
  }

  private settle(outcome: Outcome): Promise<void> {
    this.isSettled = true;
    return this.settler.settle(outcome);
  }
}
