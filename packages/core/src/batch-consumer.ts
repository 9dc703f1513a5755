/**
 * Batch consumption (`consume(handler, { batch: { size, waitMs } })`) on top of the per-message
 * engine, without a rule of its own: the engine runs each message as usual, and the per-message
 * handler given to it parks the message in the forming batch and returns the batch's promise. So
 * each message still has its own delivery, timeout, trace and settlement — explicit `ack`/`retry`/
 * `reject`/`requeue` on an element, and otherwise the engine's rule for the batch handler's
 * outcome (resolved → ack, threw → retry, timed out → retry) — and per-key ordering is the
 * engine's: a key has one message in flight, so a batch holds at most one message per key, and the
 * next one of that key waits until its predecessor is settled (retries included).
 */
import { ValidationError } from './errors.js';
import { positiveInt } from './policy.js';
import type { BatchHandler, BatchOptions, ConsumeOptions, Handler, Message } from './types.js';

/** The engine's limit on handlers at once: a batch consumer's `concurrency × size` must fit. */
const MAX_IN_HANDLERS = 10_000;

/** What the engine is started with for a batch consumer. */
export interface BatchConsumption<T> {
  /** The per-message handler for the engine. */
  readonly handler: Handler<T>;
  /** The consumer options with `batch` taken out and `concurrency` counted in messages. */
  readonly options: ConsumeOptions;
  /** For the engine's `onWaiting`: deliveries wait behind busy keys, or it is closing. */
  readonly onWaiting: () => void;
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
  const collector = new BatchCollector<T>(handler, size, waitMs);
  return {
    handler: collector.handler,
    options: { ...rest, concurrency: batches * size },
    onWaiting: collector.onWaiting,
  };
}

/** Gathers the messages the engine hands over into batches and runs the batch handler on each. */
class BatchCollector<T> {
  private forming: Batch<T> | undefined;
  private flushScheduled = false;

  constructor(
    private readonly run: BatchHandler<T>,
    private readonly size: number,
    private readonly waitMs: number,
  ) {}

  readonly handler: Handler<T> = (message) => {
    let batch = this.forming;
    if (batch === undefined) {
      batch = new Batch<T>(this);
      this.forming = batch;
      batch.arm(this.waitMs);
    }
    batch.messages.push(message);
    if (batch.messages.length >= this.size) this.flush(batch);
    return batch.done;
  };

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

/** One batch: its messages, and the promise each of their per-message handlers returns. */
class Batch<T> {
  readonly messages: Message<T>[] = [];
  readonly done: Promise<void>;
  private resolve!: () => void;
  private reject!: (error: unknown) => void;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private immediate: ReturnType<typeof setImmediate> | undefined;
  private started = false;

  constructor(private readonly collector: BatchCollector<T>) {
    this.done = new Promise<void>((resolve, reject) => {
      this.resolve = resolve;
      this.reject = reject;
    });
  }

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
      this.reject(error);
      return;
    }
    Promise.resolve(result).then(() => this.resolve(), this.reject);
  }
}
