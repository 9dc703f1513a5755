/**
 * The one consumption contract, for every adapter: a handler resolves → ack; throws → retry with
 * `attempt + 1` (after the retry delay) until `maxAttempts`, then dead-letter with the reason;
 * explicit `ack`/`retry`/`reject`/`requeue` on the message. Concurrency with per-key ordering,
 * handler timeouts and draining on close live here, once.
 */
import type { Deliver, Delivery, OutgoingMessage, Settled, Subscription } from './adapter.js';
import { loopNow } from './clock.js';
import type { Codec } from './codec.js';
import { CONFIRMED } from './connection.js';
import { Deadlines, delay } from './deadlines.js';
import {
  type DestinationKind,
  type ProcessContext,
  processChannel,
  processContext,
  type Outcome as SettleOutcome,
  settleChannel,
  settleMessage,
} from './diagnostics.js';
import { type Envelope, HEADER, readEnvelope } from './envelope.js';
import { describeError, TimeoutError } from './errors.js';
import { ACK, type Outcome, ReceivedMessage, type Settler } from './received-message.js';
import type { StandardSchemaV1 } from './schema.js';
import { validatePayload } from './schema.js';
import { withTimeout } from './timing.js';
import type { Consumer, ConsumerHealth, Handler, Headers, Message, SettleEvent } from './types.js';

export type { DestinationKind };

export interface EngineOptions<T> {
  readonly adapter: string;
  readonly clientId: string;
  readonly kind: DestinationKind;
  readonly destination: string;
  /** The durable subscription or log group, for instrumentation. */
  readonly consumer: string | undefined;
  readonly codec: Codec<T>;
  readonly schema: StandardSchemaV1<unknown, T> | undefined;
  /** Runs each message; not called when `gather` is set. */
  readonly handler: Handler<T>;
  /** A batch consumer's collector: each message's run waits in it until its batch is handled. */
  readonly gather?: Gather<T> | undefined;
  readonly concurrency: number;
  readonly handlerTimeoutMs: number;
  readonly closeTimeoutMs: number;
  readonly maxAttempts: number;
  readonly retryDelay: (attempt: number) => number;
  readonly deadLetter: string;
  /** Sends a dead letter to a queue (confirmed). */
  readonly sendDeadLetter: (queue: string, message: OutgoingMessage) => Promise<void>;
  /** Sends a retry copy to a delivery's `retryAddress` (confirmed). */
  readonly sendCopy: (address: string, message: OutgoingMessage) => Promise<void>;
  /** The broker delays a copy itself (`delay` is not `none`); otherwise a delayed copy waits here. */
  readonly nativeDelay: boolean;
  readonly reportError: (error: Error) => void;
  /** Retries and dead letters, for bus events and logs. */
  readonly onSettle: (outcome: 'retry' | 'deadLetter', event: SettleEvent) => void;
  readonly onClose: (engine: ConsumerEngine<T>) => void;
}

/**
 * A batch consumer's collector (batch-consumer.ts): the engine hands it each decoded message with
 * its run, and the collector resumes every run of a batch once, when the batch handler is done.
 * A batch costs one wait and one handler deadline, not one per message.
 */
export interface Gather<T> {
  add(message: Message<T>, run: Gathered): void;
  /**
   * Every waiting delivery's key is being handled, or the consumer is closing: a batch holding
   * messages while it waits for more should be handled now.
   */
  readonly onWaiting: () => void;
}

/** Why a batch handler failed: it threw (or its promise rejected), or it ran past its timeout. */
export interface BatchFailure {
  readonly error: unknown;
  readonly timedOut: boolean;
}

/** A message's run while its batch forms and is handled. */
export interface Gathered {
  readonly handlerTimeoutMs: number;
  /**
   * The batch handler is done: resolved (`failure` undefined) or failed. A message the handler
   * settled explicitly keeps that settlement; any other is acked, or retried on a failure.
   */
  resume(failure: BatchFailure | undefined): void;
}

/**
 * A delivery in the engine, from its arrival to the end of its run; also what `deliver` returned
 * for it (a thenable: no promise unless the adapter waits on it with `await`).
 */
class Entry implements Settled {
  /** While running: when its handler slot was taken, and where it sits in `runningEntries`. */
  startedAt = 0;
  slot = -1;
  private settled = false;
  /** Who waits for the settlement: usually no one (push-based adapters), sometimes one. */
  private waiters: (() => void) | (() => void)[] | undefined = undefined;

  constructor(
    readonly delivery: Delivery,
    readonly envelope: Envelope,
    readonly key: string | undefined,
  ) {}

  // biome-ignore lint/suspicious/noThenProperty: a thenable on purpose (adapters `await` it), see `Settled`
  then(onSettled: () => void): void {
    if (this.settled) onSettled();
    else if (this.waiters === undefined) this.waiters = onSettled;
    else if (typeof this.waiters === 'function') this.waiters = [this.waiters, onSettled];
    else this.waiters.push(onSettled);
  }

  /** Settled (or given back): whoever waits on it goes on. Once. */
  done(): void {
    if (this.settled) return;
    this.settled = true;
    const waiters = this.waiters;
    if (waiters === undefined) return;
    this.waiters = undefined;
    if (typeof waiters === 'function') wake(waiters);
    else for (const waiter of waiters) wake(waiter);
  }
}

/**
 * Calls an adapter's waiter. One that throws must not unwind the engine's bookkeeping: its error is
 * thrown again outside it, as a promise callback's would have been (an uncaught error).
 */
function wake(waiter: () => void): void {
  try {
    waiter();
  } catch (error) {
    queueMicrotask(() => {
      throw error;
    });
  }
}

/** What `deliver` returns for a delivery it does not take (closing): settled already. */
const SETTLED: Settled = {
  // biome-ignore lint/suspicious/noThenProperty: a thenable on purpose, see `Settled`
  then(onSettled) {
    onSettled();
  },
};

/**
 * How a delivery continues after its settlement: finished; handled again in process (a keyed or log
 * message, or no retry address); or a copy sent after a delay waited out of the handler slot.
 */
type Next =
  | { readonly again: false; readonly later?: undefined }
  | { readonly again: true; readonly delayMs: number; readonly attempt: number; readonly later?: undefined }
  | { readonly again: false; readonly later: { readonly delayMs: number; readonly copy: OutgoingMessage } };

/**
 * One run of a delivery through the handler, and what settling it needs; also what its message
 * settles through (a class, so a message costs no closures). The first outcome wins; later ones (a
 * timeout after an explicit ack, say) change nothing.
 */
class Attempt<T> implements Settler, Gathered {
  /** The settlement the first outcome led to: `Next` when it finished at once. */
  settlement: Next | Promise<Next> | undefined = undefined;
  /** The message its handler gets, once decoded (a batch's run needs it back when it resumes). */
  message: ReceivedMessage<T> | undefined = undefined;
  /** A traced run in a batch awaits its batch here, so its process span lasts until the batch is done. */
  wake: ((failure: BatchFailure | undefined) => void) | undefined = undefined;

  constructor(
    private readonly engine: ConsumerEngine<T>,
    readonly entry: Entry,
    readonly d: Delivery,
    readonly envelope: Envelope,
    readonly attempt: number,
    readonly redelivered: boolean,
    /** When the message first and last failed (ISO 8601), carried from attempt to attempt. */
    public firstFailure: string | undefined,
    public lastFailure: string | undefined,
    readonly traced: ProcessContext | undefined,
  ) {}

  decide(outcome: Outcome): void {
    if (this.settlement !== undefined) return;
    if (this.traced !== undefined) {
      this.traced.outcome = outcomeName(outcome, this.attempt, this.engine.maxAttempts);
    }
    this.settlement = this.engine.perform(this, outcome);
  }

  settle(outcome: Outcome): Promise<void> {
    this.decide(outcome);
    const settlement = this.settlement!;
    return settlement instanceof Promise ? settlement.then(noop) : CONFIRMED;
  }

  get handlerTimeoutMs(): number {
    return this.engine.handlerTimeoutMs;
  }

  resume(failure: BatchFailure | undefined): void {
    const wake = this.wake;
    if (wake === undefined) {
      this.engine.resume(this, failure);
      return;
    }
    this.wake = undefined;
    wake(failure);
  }
}

/** Every handler deadline of the process, a batch's too: one sweep. */
export const handlerTimeouts = new Deadlines(100);
const FINISHED: Next = { again: false };
/** The run waits in a batch: whoever resumes it finishes or continues it (`ConsumerEngine.resume`). */
const PARKED: Next = { again: false };

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
  private lastProgressAt: number | undefined;
  private handled = 0;
  private retried = 0;
  private deadLettered = 0;
  /** Start times of running handlers, oldest first. */
  // An array with swap-remove, not a Set: a Set of objects churned per message cost here what a
  // quarter of the in-memory throughput is worth (measured against the build before health).
  private readonly runningEntries: Entry[] = [];
  /** Copies waiting out a retry delay before they are sent (their originals still unsettled). */
  private readonly deferred = new Set<Promise<void>>();

  /** Where this engine consumes, as the diagnostics channels name it. */
  private readonly source: Pick<ProcessContext, 'adapter' | 'clientId' | 'kind' | 'destination' | 'consumer'>;

  constructor(private readonly o: EngineOptions<T>) {
    const { adapter, clientId, kind, destination, consumer } = o;
    this.source = { adapter, clientId, kind, destination, consumer };
  }

  get closed(): boolean {
    return this.closing;
  }

  attach(subscription: Subscription): void {
    this.subscription = subscription;
  }

  /** The adapter's entry point. */
  readonly deliver: Deliver = (delivery) => {
    this.lastDeliveryAt = loopNow();
    if (this.closing) {
      delivery.release?.();
      return SETTLED;
    }
    let envelope: Envelope;
    try {
      envelope = readEnvelope(delivery);
    } catch (error) {
      // Not settled: the broker keeps it (and redelivers it to another connection).
      this.o.reportError(asError(error));
      return SETTLED;
    }
    const entry = new Entry(delivery, envelope, this.o.concurrency > 1 ? envelope.key : undefined);
    this.pending.push(entry);
    this.pump();
    return entry;
  };

  health(): ConsumerHealth {
    let oldest: number | undefined;
    for (const entry of this.runningEntries) {
      if (oldest === undefined || entry.startedAt < oldest) oldest = entry.startedAt;
    }
    return {
      kind: this.o.kind,
      destination: this.o.destination,
      consumer: this.o.consumer,
      inFlight: this.running + this.pending.length - this.pendingHead + this.deferred.size,
      handled: this.handled,
      retried: this.retried,
      deadLettered: this.deadLettered,
      lastDeliveryAt: date(this.lastDeliveryAt),
      lastAckAt: date(this.lastAckAt),
      lastProgressAt: date(this.lastProgressAt),
      longestRunningMs: oldest === undefined ? undefined : Date.now() - oldest,
      lag: this.subscription?.lag?.(),
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
      // Delayed copies not sent yet give their originals back (their waits were aborted above).
      await Promise.all(this.deferred);
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
    this.o.gather?.onWaiting();
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
      // Bounded like the handlers: an adapter that cannot let go of its consumer (a broker that
      // does not answer) must not hang close(); what it held unsettled is redelivered.
      const subscription = this.subscription;
      if (subscription !== undefined) {
        await withTimeout(
          subscription.close(),
          this.o.closeTimeoutMs,
          () =>
            new TimeoutError(
              `consumer of "${this.o.destination}": the adapter did not close its subscription within ${this.o.closeTimeoutMs} ms; its unsettled messages will be redelivered`,
              this.o.closeTimeoutMs,
            ),
        );
      }
    } catch (error) {
      this.o.reportError(asError(error));
    }
    this.o.onClose(this);
  }

  private pump(): void {
    if (this.pumping) return;
    this.pumping = true;
    try {
      while (this.running < this.o.concurrency && this.pendingHead < this.pending.length && !this.closing) {
        const entry = this.takeRunnable();
        if (entry === undefined) {
          this.o.gather?.onWaiting();
          return;
        }
        this.running++;
        if (entry.key !== undefined) this.busyKeys.add(entry.key);
        this.run(entry);
      }
    } finally {
      this.pumping = false;
    }
  }

  /** True while `pump` runs: a run finishing inside it does not start another pump. */
  private pumping = false;

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

  /**
   * Runs a delivery's handler and settles it. A handler that returns at once and a delivery acked at
   * once (the in-memory broker) finish here without a promise; anything that waits goes on in
   * `runOn`.
   */
  private run(entry: Entry): void {
    const d = entry.delivery;
    const envelope = entry.envelope;
    entry.startedAt = loopNow();
    entry.slot = this.runningEntries.push(entry) - 1;
    let first: Attempt<T>;
    let next: Next | Promise<Next>;
    try {
      first = this.attempt(entry, envelope.attempt, envelope.redelivered, envelope.firstFailure, undefined);
      next = this.handle(first);
    } catch (error) {
      this.o.reportError(asError(error));
      d.release?.();
      this.finish(entry);
      return;
    }
    if (next === FINISHED) this.finish(entry);
    else if (next !== PARKED) void this.runOn(entry, first, next);
  }

  private attempt(
    entry: Entry,
    attempt: number,
    redelivered: boolean,
    firstFailure: string | undefined,
    lastFailure: string | undefined,
  ): Attempt<T> {
    const d = entry.delivery;
    const envelope = entry.envelope;
    const traced = processChannel.hasSubscribers
      ? processContext(
          this.source,
          envelope.id,
          envelope.key,
          envelope.subject,
          attempt,
          redelivered,
          d.position,
          d.body.byteLength,
          envelope.headers,
        )
      : undefined;
    return new Attempt(this, entry, d, envelope, attempt, redelivered, firstFailure, lastFailure, traced);
  }

  /** `handleOnce`, inside the `omnibus:process` tracing channel when someone listens. */
  private handle(run: Attempt<T>): Next | Promise<Next> {
    const traced = run.traced;
    if (traced === undefined) return this.handleOnce(run);
    // The channel wants a promise; no closure per message (`this` and `run` passed as arguments).
    return processChannel.tracePromise(this.handleTraced, traced, this, run);
  }

  private async handleTraced(run: Attempt<T>): Promise<Next> {
    return this.handleOnce(run);
  }

  /**
   * The rest of a run whose settlement did not finish at once: waits, retries in place, delayed
   * copies. A run that goes into a batch (`PARKED`) is left to `resume`, which goes on from there.
   */
  private async runOn(entry: Entry, run: Attempt<T>, pending: Next | Promise<Next>): Promise<void> {
    const d = entry.delivery;
    let parked = false;
    try {
      let next = await pending;
      for (;;) {
        if (next === PARKED) {
          parked = true;
          return;
        }
        if (next.later !== undefined) {
          this.sendLater(d, next.later.delayMs, next.later.copy);
          break;
        }
        if (!next.again) break;
        // Even with no delay, wait for the next turn of the event loop: a handler that always
        // requeues must not run in a microtask loop that starves timers and I/O.
        const waited =
          next.delayMs > 0 ? delay(next.delayMs, this.stopping.signal) : nextTurn(this.stopping.signal);
        if (this.closing || !(await waited)) {
          d.release?.();
          break;
        }
        run = this.attempt(entry, next.attempt, true, run.firstFailure, run.lastFailure);
        next = await this.handle(run);
      }
    } catch (error) {
      // Settlement failed (e.g. the dead-letter queue refused the message): the broker keeps it.
      this.o.reportError(asError(error));
      d.release?.();
    } finally {
      if (!parked) this.finish(entry);
    }
  }

  /** A run that waited in a batch goes on: settled by the batch's outcome, then finished or continued. */
  resume(run: Attempt<T>, failure: BatchFailure | undefined): void {
    let next: Next | Promise<Next>;
    try {
      next = this.conclude(run, failure);
    } catch (error) {
      this.o.reportError(asError(error));
      run.d.release?.();
      this.finish(run.entry);
      return;
    }
    if (next === FINISHED) this.finish(run.entry);
    else void this.runOn(run.entry, run, next);
  }

  /** The settlement a batch's outcome leads to for one of its runs (an explicit one stays). */
  private conclude(run: Attempt<T>, failure: BatchFailure | undefined): Next | Promise<Next> {
    if (failure !== undefined) {
      const error = failure.error;
      if (failure.timedOut) run.message!.abort(asError(error));
      if (run.traced !== undefined) run.traced.failure = error;
      run.decide({ type: 'retry', delayMs: undefined, reason: describeError(error) });
    }
    run.decide(ACK);
    return run.settlement!;
  }

  /** A traced run in a batch: its process span lasts until the batch is done. */
  private async awaitGathered(run: Attempt<T>, gather: Gather<T>): Promise<Next> {
    const failure = await new Promise<BatchFailure | undefined>((resolve) => {
      run.wake = resolve;
      gather.add(run.message!, run);
    });
    return this.conclude(run, failure);
  }

  /** A run is over: its handler slot and key are free again. */
  private finish(entry: Entry): void {
    const last = this.runningEntries.pop()!;
    if (last !== entry) {
      last.slot = entry.slot;
      this.runningEntries[entry.slot] = last;
    }
    this.running--;
    if (entry.key !== undefined) this.busyKeys.delete(entry.key);
    entry.done();
    if (this.running === 0 && this.idle !== undefined) this.idle();
    // A run that finished inside `pump` (at once) leaves the next one to that loop: no recursion.
    if (!this.pumping) this.pump();
  }

  /** A retry copy sent once its delay has passed; closing first gives the original back instead. */
  private sendLater(d: Delivery, delayMs: number, copy: OutgoingMessage): void {
    const pending = delay(delayMs, this.stopping.signal)
      .then(async (waited) => {
        if (!waited) {
          d.release?.();
          return;
        }
        await this.o.sendCopy(d.retryAddress!, copy);
        await d.ack();
        this.lastAckAt = loopNow();
      })
      .catch((error: unknown) => {
        this.o.reportError(asError(error));
        d.release?.();
      })
      .finally(() => this.deferred.delete(pending));
    this.deferred.add(pending);
  }

  /** Runs the handler once and performs the settlement it leads to (at once, when it can). */
  private handleOnce(run: Attempt<T>): Next | Promise<Next> {
    const d = run.d;
    let payload: T;
    try {
      const decoded = this.o.codec.decode(d.body);
      if (this.o.schema !== undefined) return this.validateThenHandle(run, decoded);
      payload = decoded as T;
    } catch (error) {
      return this.invalid(run, error);
    }
    return this.handlePayload(run, payload);
  }

  private async validateThenHandle(run: Attempt<T>, decoded: unknown): Promise<Next> {
    let payload: T;
    try {
      payload = await validatePayload(this.o.schema!, decoded, 'message');
    } catch (error) {
      return this.invalid(run, error);
    }
    return this.handlePayload(run, payload);
  }

  private invalid(run: Attempt<T>, error: unknown): Next | Promise<Next> {
    if (run.traced !== undefined) run.traced.failure = error;
    run.decide({ type: 'reject', reason: `invalid message: ${describeError(error)}` });
    return run.settlement!;
  }

  private handlePayload(run: Attempt<T>, payload: T): Next | Promise<Next> {
    const { d, envelope, attempt, redelivered, traced } = run;
    const message = new ReceivedMessage<T>(
      d,
      envelope,
      envelope.contentType ?? this.o.codec.contentType,
      payload,
      attempt,
      redelivered,
      this.o.destination,
      run,
    );
    const gather = this.o.gather;
    if (gather !== undefined) {
      run.message = message;
      if (traced !== undefined) return this.awaitGathered(run, gather);
      gather.add(message, run);
      return PARKED;
    }
    let result: unknown;
    try {
      const scope = traced?.scope;
      result = scope === undefined ? this.o.handler(message) : scope(() => this.o.handler(message));
    } catch (error) {
      if (traced !== undefined) traced.failure = error;
      run.decide({ type: 'retry', delayMs: undefined, reason: describeError(error) });
      return run.settlement!;
    }
    if (isPromiseLike(result)) return this.awaitHandler(run, message, result);
    run.decide(ACK);
    return run.settlement!;
  }

  /** A handler that returned a promise: its outcome, or a retry when it times out first. */
  private async awaitHandler(
    run: Attempt<T>,
    message: ReceivedMessage<T>,
    result: PromiseLike<unknown>,
  ): Promise<Next> {
    const traced = run.traced;
    // Only a handler that is still running can time out.
    const running = Promise.resolve(result);
    // A handler that outlives its timeout may still reject; that must not crash the process.
    running.catch(noop);
    let deadline: ReturnType<Deadlines['add']> | undefined;
    const timedOut = new Promise<void>((resolve) => {
      deadline = handlerTimeouts.add(this.o.handlerTimeoutMs, () => {
        message.abort(
          new TimeoutError(`handler timed out after ${this.o.handlerTimeoutMs} ms`, this.o.handlerTimeoutMs),
        );
        resolve();
      });
    });
    try {
      await Promise.race([running, timedOut]);
      if (message.abortReason !== undefined) {
        if (traced !== undefined) traced.failure = message.abortReason;
        run.decide({ type: 'retry', delayMs: undefined, reason: describeError(message.abortReason) });
      }
    } catch (error) {
      if (traced !== undefined) traced.failure = error;
      run.decide({ type: 'retry', delayMs: undefined, reason: describeError(error) });
    } finally {
      handlerTimeouts.remove(deadline);
    }
    run.decide(ACK);
    return run.settlement!;
  }

  get maxAttempts(): number {
    return this.o.maxAttempts;
  }

  get handlerTimeoutMs(): number {
    return this.o.handlerTimeoutMs;
  }

  /**
   * Performs an outcome. An ack the adapter confirms at once, with no one listening to settlements,
   * finishes here; everything else goes through `performAsync`.
   */
  perform(run: Attempt<T>, outcome: Outcome): Next | Promise<Next> {
    if (outcome.type !== 'ack' || settleChannel.hasSubscribers) return this.performAsync(run, outcome);
    let acked: Promise<void>;
    try {
      acked = run.d.ack();
    } catch (error) {
      return Promise.reject(error);
    }
    if (acked !== CONFIRMED) return this.performAsync(run, outcome, acked);
    const now = loopNow();
    this.lastAckAt = now;
    this.lastProgressAt = now;
    this.handled++;
    return FINISHED;
  }

  private async performAsync(run: Attempt<T>, outcome: Outcome, acked?: Promise<void>): Promise<Next> {
    const { envelope, attempt } = run;
    const next = acked === undefined ? await this.settle(run, outcome) : await this.acked(acked);
    this.lastProgressAt = loopNow();
    const name = outcomeName(outcome, attempt, this.o.maxAttempts);
    if (name === 'ack') this.handled++;
    else if (name === 'retry') this.retried++;
    else if (name === 'deadLetter') this.deadLettered++;
    const reported = name === 'retry' || name === 'deadLetter';
    if (!reported && !settleChannel.hasSubscribers) return next;
    // One description of the settlement for the bus events and the diagnostics channel.
    const reason = outcome.type === 'retry' || outcome.type === 'reject' ? outcome.reason : undefined;
    const settled = settleMessage(
      this.source,
      envelope.id,
      attempt,
      name,
      reason,
      name === 'retry' && outcome.type === 'retry' ? this.delayOf(outcome, attempt) : undefined,
      name === 'deadLetter' ? this.o.deadLetter : undefined,
    );
    if (reported) {
      const { adapter: _adapter, clientId: _clientId, outcome: _outcome, ...event } = settled;
      this.o.onSettle(name, { ...event, reason: reason ?? '' });
    }
    if (settleChannel.hasSubscribers) settleChannel.publish(settled);
    return next;
  }

  /** An ack the adapter was already asked for. */
  private async acked(acked: Promise<void>): Promise<Next> {
    await acked;
    this.lastAckAt = loopNow();
    return FINISHED;
  }

  private async settle(run: Attempt<T>, outcome: Outcome): Promise<Next> {
    const { d, envelope, attempt } = run;
    switch (outcome.type) {
      case 'ack':
        await d.ack();
        this.lastAckAt = loopNow();
        return FINISHED;
      case 'requeue':
        if (d.requeue !== undefined) {
          await d.requeue();
          return FINISHED;
        }
        return { again: true, delayMs: 0, attempt };
      case 'reject':
        await this.deadLetter(run, outcome.reason);
        return FINISHED;
      case 'retry': {
        const now = new Date().toISOString();
        run.firstFailure ??= now;
        run.lastFailure = now;
        if (attempt >= this.o.maxAttempts) {
          await this.deadLetter(run, outcome.reason);
          return FINISHED;
        }
        const delayMs = this.delayOf(outcome, attempt);
        // A keyed message retries in place: a copy would go behind later messages of its key.
        // So does a log's (its order must hold) and one the transport has no address to copy to.
        if (d.retryAddress === undefined || envelope.key !== undefined || this.o.kind === 'log') {
          return { again: true, delayMs, attempt: attempt + 1 };
        }
        const copy = copyOf(d, envelope, this.o.codec.contentType, {
          ...envelope.headers,
          [HEADER.attempt]: String(attempt + 1),
          [HEADER.firstFailure]: run.firstFailure,
        });
        if (delayMs > 0 && !this.o.nativeDelay) return { again: false, later: { delayMs, copy } };
        if (delayMs > 0) copy.delayMs = delayMs;
        await this.o.sendCopy(d.retryAddress, copy);
        await d.ack();
        this.lastAckAt = loopNow();
        return FINISHED;
      }
    }
  }

  private delayOf(outcome: { readonly delayMs: number | undefined }, attempt: number): number {
    return Math.max(0, outcome.delayMs ?? this.o.retryDelay(attempt));
  }

  /** A full copy to the dead-letter queue, with the fixed dead-letter headers; then the original is acked. */
  private async deadLetter(run: Attempt<T>, reason: string): Promise<void> {
    const { d, envelope, attempt } = run;
    const now = new Date().toISOString();
    const copy = copyOf(d, envelope, this.o.codec.contentType, {
      ...envelope.headers,
      [HEADER.deadLetterOrigin]: this.o.destination,
      [HEADER.deadLetterKind]: this.o.kind,
      ...(this.o.consumer === undefined
        ? {}
        : {
            [this.o.kind === 'log' ? HEADER.deadLetterGroup : HEADER.deadLetterSubscription]: this.o.consumer,
          }),
      [HEADER.deadLetterReason]: reason.length > 1000 ? `${reason.slice(0, 1000)}…` : reason,
      [HEADER.deadLetterAttempts]: String(attempt),
      [HEADER.deadLetterFirstFailure]: run.firstFailure ?? now,
      [HEADER.deadLetterLastFailure]: run.lastFailure ?? now,
    });
    await this.o.sendDeadLetter(this.o.deadLetter, copy);
    await d.ack();
    this.lastAckAt = loopNow();
  }
}

/** The outcome as instrumentation names it: a retry past `maxAttempts` is a dead letter. */
function outcomeName(outcome: Outcome, attempt: number, maxAttempts: number): SettleOutcome {
  switch (outcome.type) {
    case 'reject':
      return 'deadLetter';
    case 'retry':
      return attempt >= maxAttempts ? 'deadLetter' : 'retry';
    default:
      return outcome.type;
  }
}

/** A copy of a received message, as it was sent: same id, bytes, content type, key, subject, priority and time. */
function copyOf(
  d: Delivery,
  envelope: Envelope,
  fallbackContentType: string,
  headers: Headers,
): Mutable<OutgoingMessage> {
  const copy: Mutable<OutgoingMessage> = {
    id: envelope.id,
    body: d.body,
    headers,
    contentType: envelope.contentType ?? fallbackContentType,
    timestamp: envelope.timestamp,
  };
  if (envelope.key !== undefined) copy.key = envelope.key;
  if (envelope.subject !== undefined) copy.subject = envelope.subject;
  if (envelope.priority !== undefined) copy.priority = envelope.priority;
  return copy;
}

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

function noop(): void {}

/** Captured at load, so a test's fake timers do not hold back a message handled again at once. */
const immediate = globalThis.setImmediate;

/** Resolves on the next turn of the event loop: true, or false when `signal` is aborted by then. */
function nextTurn(signal: AbortSignal): Promise<boolean> {
  return new Promise((resolve) => immediate(() => resolve(!signal.aborted)));
}

function date(ms: number | undefined): Date | undefined {
  return ms === undefined ? undefined : new Date(ms);
}

export function isPromiseLike(value: unknown): value is PromiseLike<unknown> {
  return (
    typeof value === 'object' && value !== null && typeof (value as { then?: unknown }).then === 'function'
  );
}

function asError(error: unknown): Error {
  return error instanceof Error ? error : new Error(describeError(error));
}
