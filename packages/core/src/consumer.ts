/**
 * The one consumption contract, for every adapter: a handler resolves → ack; throws → retry with
 * `attempt + 1` (after the retry delay) until `maxAttempts`, then dead-letter with the reason;
 * explicit `ack`/`retry`/`reject`/`requeue` on the message. Concurrency with per-key ordering,
 * handler timeouts and draining on close live here, once.
 */
import type { Deliver, Delivery, OutgoingMessage, Subscription } from './adapter.js';
import type { Codec } from './codec.js';
import { Deadlines, delay } from './deadlines.js';
import { describeError, TimeoutError } from './errors.js';
import { applicationHeaders, HEADER, headerAttempt } from './headers.js';
import type { StandardSchemaV1 } from './schema.js';
import { validatePayload } from './schema.js';
import type {
  Consumer,
  ConsumerHealth,
  Handler,
  Headers,
  LogPosition,
  Message,
  RetryOptions,
} from './types.js';

export type DestinationKind = 'queue' | 'topic' | 'log';

export interface EngineOptions<T> {
  readonly kind: DestinationKind;
  readonly destination: string;
  readonly codec: Codec<T>;
  readonly schema: StandardSchemaV1<unknown, T> | undefined;
  readonly handler: Handler<T>;
  readonly concurrency: number;
  readonly handlerTimeoutMs: number;
  readonly closeTimeoutMs: number;
  readonly maxAttempts: number;
  readonly retryDelay: (attempt: number) => number;
  readonly deadLetter: string;
  /** Sends a dead letter to a queue, for adapters without native dead-lettering. */
  readonly sendDeadLetter: (queue: string, message: OutgoingMessage) => Promise<void>;
  readonly reportError: (error: Error) => void;
  readonly onClose: (engine: ConsumerEngine<T>) => void;
}

type Outcome =
  | { readonly type: 'ack' }
  | { readonly type: 'retry'; readonly delayMs: number | undefined; readonly reason: string }
  | { readonly type: 'reject'; readonly reason: string }
  | { readonly type: 'requeue' };

interface Entry {
  readonly delivery: Delivery;
  readonly key: string | undefined;
  readonly done: () => void;
}

/** How a delivery continues after its settlement: finished, or handled again in process. */
type Next =
  | { readonly again: false }
  | { readonly again: true; readonly delayMs: number; readonly attempt: number };

const handlerTimeouts = new Deadlines(100);
const FINISHED: Next = { again: false };

export class ConsumerEngine<T> implements Consumer {
  private readonly pending: Entry[] = [];
  private pendingHead = 0;
  private readonly busyKeys = new Set<string>();
  private running = 0;
  private closing = false;
  private closePromise: Promise<void> | undefined;
  private subscription: Subscription | undefined;
  /** Aborted when closing starts: in-process retry waits end and give their message back. */
  private readonly stopping = new AbortController();
  private idle: (() => void) | undefined;
  private lastDeliveryAt: number | undefined;
  private lastAckAt: number | undefined;

  constructor(private readonly o: EngineOptions<T>) {}

  get closed(): boolean {
    return this.closing;
  }

  attach(subscription: Subscription): void {
    this.subscription = subscription;
  }

  /** The adapter's entry point. */
  readonly deliver: Deliver = (delivery) => {
    this.lastDeliveryAt = Date.now();
    if (this.closing) {
      delivery.release?.();
      return Promise.resolve();
    }
    return new Promise<void>((done) => {
      const key = this.o.concurrency > 1 ? delivery.key : undefined;
      this.pending.push({ delivery, key, done });
      this.pump();
    });
  };

  health(): ConsumerHealth {
    return {
      kind: this.o.kind,
      destination: this.o.destination,
      inFlight: this.running + this.pending.length - this.pendingHead,
      lastDeliveryAt: this.lastDeliveryAt === undefined ? undefined : new Date(this.lastDeliveryAt),
      lastAckAt: this.lastAckAt === undefined ? undefined : new Date(this.lastAckAt),
    };
  }

  close(): Promise<void> {
    this.closePromise ??= this.shutdown();
    return this.closePromise;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  private async shutdown(): Promise<void> {
    this.closing = true;
    this.stopping.abort();
    try {
      await this.subscription?.stop?.();
    } catch (error) {
      this.o.reportError(asError(error));
    }
    // Messages that never reached a handler go back to the broker untouched.
    for (let i = this.pendingHead; i < this.pending.length; i++) {
      const entry = this.pending[i]!;
      entry.delivery.release?.();
      entry.done();
    }
    this.pending.length = 0;
    this.pendingHead = 0;
    if (this.running > 0) {
      const drained = new Promise<void>((resolve) => {
        this.idle = resolve;
      });
      // The close timer must not outlive the close: cancel it once the handlers are done.
      const timer = new AbortController();
      const timedOut = await Promise.race([
        drained.then(() => false),
        delay(this.o.closeTimeoutMs, timer.signal),
      ]);
      timer.abort();
      if (timedOut) {
        this.o.reportError(
          new TimeoutError(
            `consumer of "${this.o.destination}" closed with ${this.running} handler(s) still running after ${this.o.closeTimeoutMs} ms; their messages will be redelivered`,
            this.o.closeTimeoutMs,
          ),
        );
      }
    }
    try {
      await this.subscription?.close();
    } catch (error) {
      this.o.reportError(asError(error));
    }
    this.o.onClose(this);
  }

  private pump(): void {
    while (this.running < this.o.concurrency && this.pendingHead < this.pending.length && !this.closing) {
      const entry = this.takeRunnable();
      if (entry === undefined) return;
      this.running++;
      if (entry.key !== undefined) this.busyKeys.add(entry.key);
      void this.run(entry);
    }
  }

  /** The first pending entry whose key is not being handled; earlier entries of a key always go first. */
  private takeRunnable(): Entry | undefined {
    const head = this.pending[this.pendingHead]!;
    if (head.key === undefined || !this.busyKeys.has(head.key)) {
      this.pendingHead++;
      if (this.pendingHead > 1024 && this.pendingHead * 2 > this.pending.length) {
        this.pending.splice(0, this.pendingHead);
        this.pendingHead = 0;
      }
      return head;
    }
    for (let i = this.pendingHead + 1; i < this.pending.length; i++) {
      const entry = this.pending[i]!;
      if (entry.key === undefined || !this.busyKeys.has(entry.key)) {
        this.pending.splice(i, 1);
        return entry;
      }
    }
    return undefined;
  }

  private async run(entry: Entry): Promise<void> {
    const d = entry.delivery;
    let attempt = Math.max(d.attempt ?? 1, headerAttempt(d.headers));
    let redelivered = d.redelivered || attempt > 1;
    const failures = { first: d.headers[HEADER.firstFailure], last: undefined as string | undefined };
    try {
      for (;;) {
        const next = await this.handleOnce(d, attempt, redelivered, failures);
        if (!next.again) break;
        if (this.closing || !(await delay(next.delayMs, this.stopping.signal))) {
          d.release?.();
          break;
        }
        attempt = next.attempt;
        redelivered = true;
      }
    } catch (error) {
      // Settlement failed (e.g. the dead-letter queue refused the message): the broker keeps it.
      this.o.reportError(asError(error));
      d.release?.();
    } finally {
      this.running--;
      if (entry.key !== undefined) this.busyKeys.delete(entry.key);
      entry.done();
      if (this.running === 0 && this.idle !== undefined) this.idle();
      this.pump();
    }
  }

  /** Runs the handler once and performs the settlement it leads to. */
  private async handleOnce(
    d: Delivery,
    attempt: number,
    redelivered: boolean,
    failures: { first: string | undefined; last: string | undefined },
  ): Promise<Next> {
    let settlement: Promise<Next> | undefined;
    // The first outcome wins; later ones (a timeout after an explicit ack, say) change nothing.
    const decide = (outcome: Outcome): void => {
      settlement ??= this.perform(d, outcome, attempt, failures);
    };
    const settle = (outcome: Outcome): Promise<void> => {
      decide(outcome);
      return settlement!.then(noop);
    };

    let payload: T;
    try {
      const decoded = this.o.codec.decode(d.body);
      payload =
        this.o.schema === undefined
          ? (decoded as T)
          : await validatePayload(this.o.schema, decoded, 'message');
    } catch (error) {
      decide({ type: 'reject', reason: `invalid message: ${describeError(error)}` });
      return settlement!;
    }

    const message = new ReceivedMessage<T>(d, payload, attempt, redelivered, this.o.destination, settle);
    let result: unknown;
    try {
      result = this.o.handler(message);
    } catch (error) {
      decide({ type: 'retry', delayMs: undefined, reason: describeError(error) });
      return settlement!;
    }
    if (isPromiseLike(result)) {
      // Only a handler that is still running can time out.
      const running = Promise.resolve(result);
      // A handler that outlives its timeout may still reject; that must not crash the process.
      running.catch(noop);
      let deadline: ReturnType<Deadlines['add']> | undefined;
      const timedOut = new Promise<void>((resolve) => {
        deadline = handlerTimeouts.add(this.o.handlerTimeoutMs, () => {
          message.abort(
            new TimeoutError(
              `handler timed out after ${this.o.handlerTimeoutMs} ms`,
              this.o.handlerTimeoutMs,
            ),
          );
          resolve();
        });
      });
      try {
        await Promise.race([running, timedOut]);
        if (message.abortReason !== undefined) {
          decide({ type: 'retry', delayMs: undefined, reason: describeError(message.abortReason) });
        }
      } catch (error) {
        decide({ type: 'retry', delayMs: undefined, reason: describeError(error) });
      } finally {
        handlerTimeouts.remove(deadline);
      }
    }
    decide({ type: 'ack' });
    return settlement!;
  }

  private async perform(
    d: Delivery,
    outcome: Outcome,
    attempt: number,
    failures: { first: string | undefined; last: string | undefined },
  ): Promise<Next> {
    switch (outcome.type) {
      case 'ack':
        await d.ack();
        this.lastAckAt = Date.now();
        return FINISHED;
      case 'requeue':
        if (d.requeue !== undefined) {
          await d.requeue();
          return FINISHED;
        }
        return { again: true, delayMs: 0, attempt };
      case 'reject':
        await this.deadLetter(d, outcome.reason, attempt, failures);
        return FINISHED;
      case 'retry': {
        const now = new Date().toISOString();
        failures.first ??= now;
        failures.last = now;
        if (attempt >= this.o.maxAttempts) {
          await this.deadLetter(d, outcome.reason, attempt, failures);
          return FINISHED;
        }
        const delayMs = Math.max(0, outcome.delayMs ?? this.o.retryDelay(attempt));
        if (d.retry !== undefined) {
          const headers: Headers = {
            ...d.headers,
            [HEADER.attempt]: String(attempt + 1),
            [HEADER.firstFailure]: failures.first,
          };
          await d.retry({ delayMs, attempt: attempt + 1, headers });
          return FINISHED;
        }
        return { again: true, delayMs, attempt: attempt + 1 };
      }
    }
  }

  private async deadLetter(
    d: Delivery,
    reason: string,
    attempt: number,
    failures: { first: string | undefined; last: string | undefined },
  ): Promise<void> {
    const now = new Date().toISOString();
    const headers: Headers = {
      ...applicationHeaders(d.headers),
      [HEADER.deadLetterOrigin]: this.o.destination,
      [HEADER.deadLetterKind]: this.o.kind,
      [HEADER.deadLetterReason]: reason.length > 1000 ? `${reason.slice(0, 1000)}…` : reason,
      [HEADER.deadLetterAttempts]: String(attempt),
      [HEADER.deadLetterFirstFailure]: failures.first ?? now,
      [HEADER.deadLetterLastFailure]: failures.last ?? now,
    };
    if (d.deadLetter !== undefined) {
      await d.deadLetter({ destination: this.o.deadLetter, headers });
    } else {
      await this.o.sendDeadLetter(this.o.deadLetter, {
        id: d.id,
        body: d.body,
        headers,
        contentType: this.o.codec.contentType,
        timestamp: d.timestamp,
        ...(d.key === undefined ? {} : { key: d.key }),
        ...(d.subject === undefined ? {} : { subject: d.subject }),
      });
      await d.ack();
    }
    this.lastAckAt = Date.now();
  }
}

class ReceivedMessage<T> implements Message<T> {
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
    readonly payload: T,
    readonly attempt: number,
    readonly redelivered: boolean,
    readonly destination: string,
    private readonly settleWith: (outcome: Outcome) => Promise<void>,
  ) {
    this.id = delivery.id;
    this.body = delivery.body;
    this.headers = applicationHeaders(delivery.headers);
    if (delivery.key !== undefined) this.key = delivery.key;
    if (delivery.subject !== undefined) this.subject = delivery.subject;
    if (delivery.priority !== undefined) this.priority = delivery.priority;
    if (delivery.position !== undefined) this.position = delivery.position;
    this.raw = delivery.raw;
    this.timestampMs = delivery.timestamp;
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
    return this.settle({ type: 'ack' });
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
    return this.settleWith(outcome);
  }
}

function noop(): void {}

function isPromiseLike(value: unknown): value is PromiseLike<unknown> {
  return (
    typeof value === 'object' && value !== null && typeof (value as { then?: unknown }).then === 'function'
  );
}

function asError(error: unknown): Error {
  return error instanceof Error ? error : new Error(describeError(error));
}
