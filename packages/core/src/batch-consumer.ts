/**
 * Batch consumption (`consume(handler, { batch: { size, waitMs } })`) on top of the per-message
 * engine, without a rule of its own: the engine runs each message as usual up to its handler, then
 * hands the message and its run to the collector here instead (`Gather`). A batch is handled with
 * one call, one wait and one handler deadline; when it is done, each of its runs goes on with the
 * batch's outcome. So each message still has its own delivery, trace and settlement — explicit
 * `ack`/`retry`/`reject`/`requeue` on an element, and otherwise the engine's rule for the batch
 * handler's outcome (resolved → ack, threw → retry, timed out → retry, the timeout counted from
 * the handler's call) — and per-key ordering is the engine's: a key has one message in flight, so
 * a batch holds at most one message per key, and the next one of that key waits until its
 * predecessor is settled (retries included).
 */
import { type BatchFailure, type Gather, type Gathered, handlerTimeouts, isPromiseLike } from './consumer.js';
import type { Deadline } from './deadlines.js';
import { TimeoutError, ValidationError } from './errors.js';
import { positiveInt } from './policy.js';
import type { BatchHandler, BatchOptions, ConsumeOptions, Message } from './types.js';

/** The engine's limit on handlers at once: a batch consumer's `concurrency × size` must fit. */
const MAX_IN_HANDLERS = 10_000;

/** What the engine is started with for a batch consumer. */
export interface BatchConsumption<T> {
  /** The engine's collector. */
  readonly gather: Gather<T>;
  /** The consumer options with `batch` taken out and `concurrency` counted in messages. */
  readonly options: ConsumeOptions;
}

/**
 * Checks `options.batch` and returns the engine's handler and options. `concurrency` is in batches
 * (default 1): the engine runs up to `concurrency × size` messages at once. An explicit `prefetch`
 * below `size` is refused (a batch could never fill): raising it silently would change what the
 * broker hands over behind the application's back.
 */
export function batchConsumption<T>(
  destination: string,
  handler: BatchHandler<T>,
  options: ConsumeOptions & { readonly batch: BatchOptions },
): BatchConsumption<T> {
  const { batch, ...rest } = options;
  if (typeof handler !== 'function') throw new ValidationError('handler must be a function');
  if (typeof batch !== 'object' || batch === null) {
    throw new ValidationError(`batch must be { size, waitMs? } for "${destination}"`);
  }
  const issues: string[] = [];
  for (const key of Object.keys(batch)) {
    if (key !== 'size' && key !== 'waitMs')
      issues.push(`batch: unknown option "${key}"; known: size, waitMs`);
  }
  if (issues.length > 0) throw new ValidationError(`invalid batch options for "${destination}"`, issues);
  if (batch.size === undefined) throw new ValidationError(`batch.size is required for "${destination}"`);
  const size = positiveInt('batch.size', batch.size, 1, MAX_IN_HANDLERS);
  const waitMs = positiveInt('batch.waitMs', batch.waitMs, 0, 60_000, 0);
  const batches = positiveInt('concurrency', rest.concurrency, 1, MAX_IN_HANDLERS);
  if (batches * size > MAX_IN_HANDLERS) {
    throw new ValidationError(
      `concurrency × batch.size must be at most ${MAX_IN_HANDLERS} for "${destination}", got ${batches} × ${size}`,
    );
  }
  if (rest.prefetch !== undefined && typeof rest.prefetch === 'number' && rest.prefetch < size) {
    throw new ValidationError(
      `prefetch (${rest.prefetch}) must be at least batch.size (${size}) for "${destination}": a batch fills only with what the broker hands over`,
    );
  }
  return {
    gather: new BatchCollector<T>(handler, size, waitMs),
    options: { ...rest, concurrency: batches * size },
  };
}

/** Gathers the messages the engine hands over into batches and runs the batch handler on each. */
class BatchCollector<T> implements Gather<T> {
  private forming: Batch<T> | undefined;
  private flushScheduled = false;

  constructor(
    private readonly run: BatchHandler<T>,
    private readonly size: number,
    private readonly waitMs: number,
  ) {}

  add(message: Message<T>, run: Gathered): void {
    let batch = this.forming;
    if (batch === undefined) {
      batch = new Batch<T>(this);
      this.forming = batch;
      batch.arm(this.waitMs);
    }
    batch.messages.push(message);
    batch.runs.push(run);
    if (batch.messages.length >= this.size) this.flush(batch);
  }

  /**
   * Messages wait behind busy keys (perhaps one in this batch) or the consumer closes: the forming
   * batch goes at the next turn (what is settled or arrives by then still joins). Waiting for free
   * slots is not a reason: other batches finish, and `waitMs` bounds the wait.
   */
  readonly onWaiting = (): void => {
    if (this.forming === undefined || this.flushScheduled) return;
    this.flushScheduled = true;
    setImmediate(this.flushForming);
  };

  private readonly flushForming = (): void => {
    this.flushScheduled = false;
    if (this.forming !== undefined) this.flush(this.forming);
  };

  /** Hands `batch` to the handler (once): it stops forming. */
  flush(batch: Batch<T>): void {
    if (this.forming === batch) this.forming = undefined;
    batch.start(this.run);
  }
}

/** One batch: its messages, their runs, and the handler's one deadline. */
class Batch<T> {
  readonly messages: Message<T>[] = [];
  readonly runs: Gathered[] = [];
  private timer: ReturnType<typeof setTimeout> | undefined;
  private immediate: ReturnType<typeof setImmediate> | undefined;
  private deadline: Deadline | undefined;
  private started = false;
  private ended = false;

  constructor(private readonly collector: BatchCollector<T>) {}

  /** Flushes the batch after `waitMs` (0: at the next turn of the event loop) unless it fills first. */
  arm(waitMs: number): void {
    if (waitMs === 0) this.immediate = setImmediate(this.expire);
    else this.timer = setTimeout(this.expire, waitMs);
  }

  private readonly expire = (): void => {
    this.timer = undefined;
    this.immediate = undefined;
    this.collector.flush(this);
  };

  start(run: BatchHandler<T>): void {
    if (this.started) return;
    this.started = true;
    if (this.timer !== undefined) clearTimeout(this.timer);
    if (this.immediate !== undefined) clearImmediate(this.immediate);
    this.timer = undefined;
    this.immediate = undefined;
    let result: unknown;
    try {
      result = run(this.messages);
    } catch (error) {
      this.end({ error, timedOut: false });
      return;
    }
    if (!isPromiseLike(result)) {
      this.end(undefined);
      return;
    }
    const timeoutMs = this.runs[0]!.handlerTimeoutMs;
    this.deadline = handlerTimeouts.add(timeoutMs, () => {
      this.deadline = undefined;
      this.end({
        error: new TimeoutError(`handler timed out after ${timeoutMs} ms`, timeoutMs),
        timedOut: true,
      });
    });
    // A handler that outlives its timeout may still reject: `end` has run by then and ignores it.
    result.then(this.resolved, this.rejected);
  }

  private readonly resolved = (): void => this.end(undefined);
  private readonly rejected = (error: unknown): void => this.end({ error, timedOut: false });

  /** The handler is done (or timed out): every run of the batch goes on, once. */
  private end(failure: BatchFailure | undefined): void {
    if (this.ended) return;
    this.ended = true;
    handlerTimeouts.remove(this.deadline);
    this.deadline = undefined;
    for (const run of this.runs) run.resume(failure);
  }
}
