/**
 * Connection state, events and the bounded wait for reconnection that every send goes through:
 * during an outage a send waits (up to `sendBuffer.maxMessages` of them, each up to
 * `sendBuffer.timeoutMs`) instead of failing or being dropped.
 */

import type { AdapterContext } from './adapter.js';
import type { ResolvedConnectOptions } from './config.js';
import { DeadlineNode, Deadlines, delay } from './deadlines.js';
import { type ConnectionMessage, connectionChannel } from './diagnostics.js';
import { CapacityError, ClosedError, ConnectionError, TimeoutError } from './errors.js';
import type { BusEvents, ConnectionState, Logger, SettleEvent } from './types.js';

const sendTimeouts = new Deadlines(100);

/**
 * What an adapter's `send`, `publish` or `sendTo` returns when the broker took the message at once
 * (the in-memory broker with room): the operation is confirmed, so core sets no deadline for it and
 * makes no promise of its own. Any other promise is waited for, up to the send timeout. A
 * delivery's `ack` may return it too when the ack was done at once (a Kafka offset marked finished):
 * the engine then settles the message without a promise.
 */
export const CONFIRMED: Promise<void> = Promise.resolve();

export class Connection {
  state: ConnectionState = 'connecting';
  since = new Date();
  /** Sends waiting for the connection. */
  waiting = 0;
  /** Operations handed to the adapter and not finished. */
  private inFlight = 0;
  private readonly listeners: { [E in keyof BusEvents]: Set<BusEvents[E]> } = {
    state: new Set(),
    error: new Set(),
    retry: new Set(),
    deadLetter: new Set(),
  };
  private readonly stateWaiters = new Set<() => void>();
  private idleWaiter: (() => void) | undefined;

  constructor(
    readonly adapterName: string,
    private readonly options: ResolvedConnectOptions,
  ) {
    this.logger = childLogger(options.logger, { adapter: adapterName });
  }

  /** The application's logger, bound to `{ adapter }`. */
  readonly logger: Logger;

  isClosed(): boolean {
    return this.state === 'closed';
  }

  context(): AdapterContext {
    return {
      clientId: this.options.clientId,
      logger: this.logger,
      setState: (state, error) => this.setState(state, error),
      reportError: (error) => this.reportError(error),
    };
  }

  on<E extends keyof BusEvents>(event: E, listener: BusEvents[E]): () => void {
    const set = this.listeners[event] as Set<BusEvents[E]>;
    set.add(listener);
    return () => set.delete(listener);
  }

  setState(state: ConnectionState, error?: Error): void {
    if (this.state === 'closed' || state === this.state) return;
    this.state = state;
    this.since = new Date();
    const fields = error === undefined ? { state } : { state, error: error.message };
    this.logger[state === 'reconnecting' ? 'warn' : 'info'](fields, `omnibus ${state}`);
    if (connectionChannel.hasSubscribers) {
      connectionChannel.publish({
        adapter: this.adapterName,
        clientId: this.options.clientId,
        state,
        error,
      } satisfies ConnectionMessage);
    }
    for (const listener of this.listeners.state) safely(() => listener(state, error));
    for (const wake of this.stateWaiters) wake();
    this.stateWaiters.clear();
  }

  /** A retry or a dead letter: logged (debug / warn, with the reason) and emitted as a bus event. */
  reportSettlement(outcome: 'retry' | 'deadLetter', event: SettleEvent): void {
    const fields = { ...event };
    if (outcome === 'retry') {
      this.logger.debug(fields, `omnibus retrying ${event.id} from "${event.destination}"`);
    } else {
      this.logger.warn(
        fields,
        `omnibus dead-lettered ${event.id} from "${event.destination}" to "${event.deadLetter}": ${event.reason}`,
      );
    }
    for (const listener of this.listeners[outcome]) safely(() => listener(event));
  }

  reportError(error: Error): void {
    this.logger.error({ code: (error as { code?: unknown }).code, err: error }, error.message);
    for (const listener of this.listeners.error) safely(() => listener(error));
  }

  /**
   * Runs a broker operation: waits (bounded) while reconnecting, retries after a retriable
   * connection error once reconnected, and fails with `TimeoutError` past the deadline. `arg` is
   * passed to `operation`, so a caller can hand over a function made once instead of a closure per
   * call. An operation that returns `CONFIRMED` was done at once: no deadline, no promise of its own.
   */
  run<R, A = undefined>(what: string, operation: (arg: A) => Promise<R>, arg?: A): Promise<R> {
    return this.runFor(what, operation, arg as A, OWN) as Promise<R>;
  }

  /**
   * `run`, resolving with `value` instead of the operation's own value (unless `value` is `OWN`)
   * once the operation is confirmed: the caller (a send resolving with its id) needs no promise of
   * its own for that.
   */
  runFor<V, A>(what: string, operation: (arg: A) => Promise<unknown>, arg: A, value: V): Promise<V> {
    return this.start(what, operation, arg, value) as Promise<V>;
  }

  private start<A>(
    what: string,
    operation: (arg: A) => Promise<unknown>,
    arg: A,
    value: unknown,
  ): Promise<unknown> {
    if (this.state !== 'connected') return this.afterOutage(this.sendOf(what, operation, arg, value), 0);
    // The common case, connected: one call; a deadline and a promise only when the broker answers later.
    let pending: Promise<unknown>;
    try {
      pending = operation(arg);
    } catch (error) {
      return this.recover(this.sendOf(what, operation, arg, value), 0, error);
    }
    if (pending === CONFIRMED) return value === OWN ? pending : Promise.resolve(value);
    const timeoutMs = this.options.sendBuffer.timeoutMs;
    return this.watch(
      new Watch(this, what, operation, arg, value, Date.now() + timeoutMs, timeoutMs, 0),
      pending,
    );
  }

  private sendOf<A>(what: string, operation: (arg: A) => Promise<unknown>, arg: A, value: unknown): Send<A> {
    const timeoutMs = this.options.sendBuffer.timeoutMs;
    return { what, operation, arg, value, dueAt: Date.now() + timeoutMs, timeoutMs };
  }

  /** Resolves when nothing is in flight, or after `timeoutMs`. */
  async settled(timeoutMs: number): Promise<void> {
    if (this.inFlight === 0) return;
    const timer = new AbortController();
    await Promise.race([
      new Promise<void>((resolve) => (this.idleWaiter = resolve)),
      delay(timeoutMs, timer.signal),
    ]);
    timer.abort();
  }

  private async afterOutage<A>(send: Send<A>, round: number): Promise<unknown> {
    if (this.state === 'closed')
      throw new ClosedError(`${send.what}: the bus is closed`, { adapter: this.adapterName });
    if (this.state !== 'connected') await this.waitForConnection(send);
    // The adapter may not have reported the outage yet: back off before trying again.
    else if (round > 0) await delay(Math.min(25 * 2 ** (round - 1), 1000));
    return this.attempt(send, round);
  }

  private attempt<A>(send: Send<A>, round: number): Promise<unknown> {
    let pending: Promise<unknown>;
    try {
      pending = send.operation(send.arg);
    } catch (error) {
      return this.recover(send, round, error);
    }
    if (pending === CONFIRMED) return send.value === OWN ? pending : Promise.resolve(send.value);
    const { what, operation, arg, value, dueAt, timeoutMs } = send;
    return this.watch(new Watch(this, what, operation, arg, value, dueAt, timeoutMs, round), pending);
  }

  /** An operation that failed at once: tried again after the outage when it may be, else its error. */
  private recover<A>(send: Send<A>, round: number, error: unknown): Promise<unknown> {
    const retriable = error instanceof ConnectionError && error.retriable;
    if (!retriable || Date.now() >= send.dueAt || this.isClosed()) return Promise.reject(error);
    return this.afterOutage(send, round + 1);
  }

  /** Waits for the broker's answer to an operation in flight, up to the send's deadline. */
  private watch<A>(watch: Watch<A>, pending: Promise<unknown>): Promise<unknown> {
    this.inFlight++;
    making = watch as Watch<unknown>;
    const settled = new Promise(capture);
    making = undefined;
    const round = watch.round;
    sendTimeouts.insert(round === 0 ? watch.timeoutMs : Math.max(1, watch.dueAt - Date.now()), watch);
    pending.then(watch.onValue, watch.onError);
    return settled;
  }

  /** A watched operation succeeded. */
  answered<A>(watch: Watch<A>, value: unknown): void {
    sendTimeouts.remove(watch);
    this.finished();
    watch.resolve(watch.value === OWN ? value : watch.value);
  }

  /** A watched operation failed: tried again after the outage when it may be, else its error. */
  failed<A>(watch: Watch<A>, error: unknown): void {
    sendTimeouts.remove(watch);
    this.finished();
    this.recover(watch, watch.round, error).then(watch.resolve, watch.reject);
  }

  /** A watched operation's deadline passed before the broker answered. */
  timedOut(what: string, timeoutMs: number): TimeoutError {
    return new TimeoutError(`${what}: no confirmation from the broker within ${timeoutMs} ms`, timeoutMs, {
      adapter: this.adapterName,
    });
  }

  private finished(): void {
    this.inFlight--;
    if (this.inFlight === 0 && this.idleWaiter !== undefined) {
      this.idleWaiter();
      this.idleWaiter = undefined;
    }
  }

  private async waitForConnection({
    what,
    dueAt,
    timeoutMs,
  }: Pick<Send<unknown>, 'what' | 'dueAt' | 'timeoutMs'>): Promise<void> {
    const limit = this.options.sendBuffer.maxMessages;
    if (this.waiting >= limit) {
      throw new CapacityError(
        `${what}: ${limit} sends are already waiting for the connection to come back; raise sendBuffer.maxMessages or slow down`,
        limit,
        { adapter: this.adapterName },
      );
    }
    this.waiting++;
    try {
      while (this.state !== 'connected') {
        if (this.state === 'closed')
          throw new ClosedError(`${what}: the bus is closed`, { adapter: this.adapterName });
        const left = dueAt - Date.now();
        if (left <= 0) {
          throw new TimeoutError(
            `${what}: the connection did not come back within ${timeoutMs} ms`,
            timeoutMs,
            {
              adapter: this.adapterName,
            },
          );
        }
        await new Promise<void>((resolve) => {
          const wake = () => {
            clearTimeout(timer);
            resolve();
          };
          const timer = setTimeout(() => {
            this.stateWaiters.delete(wake);
            resolve();
          }, left);
          this.stateWaiters.add(wake);
        });
      }
    } finally {
      this.waiting--;
    }
  }
}

function safely(fn: () => void): void {
  try {
    fn();
  } catch {
    // A listener's failure is the listener's; it must not break the connection.
  }
}

/**
 * A logger bound to `bindings` (`{ adapter }`, `{ destination }`): the logger's own `child` when it
 * has one (pino, bunyan), otherwise the bindings are added to every line's fields.
 */
export function childLogger(logger: Logger, bindings: Record<string, unknown>): Logger {
  if (typeof logger.child === 'function') return logger.child(bindings);
  const bound =
    (level: 'debug' | 'info' | 'warn' | 'error') => (fields: Record<string, unknown>, message: string) =>
      logger[level]({ ...bindings, ...fields }, message);
  return {
    debug: bound('debug'),
    info: bound('info'),
    warn: bound('warn'),
    error: bound('error'),
    child: (more) => childLogger(logger, { ...bindings, ...more }),
  };
}

/** `runFor`'s value for an operation that resolves with its own value (what `run` does). */
export const OWN: unique symbol = Symbol("the operation's own value");

/** One send through its retries: what it is (for errors), how to try it, and its deadline. */
interface Send<A> {
  readonly what: string;
  readonly operation: (arg: A) => Promise<unknown>;
  readonly arg: A;
  /** What the run resolves with once the operation is confirmed: `OWN` for the operation's value. */
  readonly value: unknown;
  readonly dueAt: number;
  readonly timeoutMs: number;
}

/**
 * An operation in flight, watched: its send record, its own deadline node (`fire` is the timeout)
 * and the settlement of the promise its caller got — one object and two callbacks a send, not a
 * send record, a node, an executor and a timeout closure besides.
 */
class Watch<A> extends DeadlineNode implements Send<A> {
  resolve!: (value: unknown) => void;
  reject!: (error: unknown) => void;

  constructor(
    private readonly connection: Connection,
    readonly what: string,
    readonly operation: (arg: A) => Promise<unknown>,
    readonly arg: A,
    readonly value: unknown,
    readonly dueAt: number,
    readonly timeoutMs: number,
    readonly round: number,
  ) {
    super();
  }

  fire(): void {
    this.reject(this.connection.timedOut(this.what, this.timeoutMs));
  }

  readonly onValue = (value: unknown): void => this.connection.answered(this, value);
  readonly onError = (error: unknown): void => this.connection.failed(this, error);
}

/** The watch whose promise is being made: one shared executor fills it in, no closure per send. */
let making: Watch<unknown> | undefined;
function capture(resolve: (value: unknown) => void, reject: (error: unknown) => void): void {
  making!.resolve = resolve;
  making!.reject = reject;
}
