/**
 * Fault injection for the in-memory broker: the faults real brokers make — duplicates, redelivery
 * after a lost ack, unkeyed messages out of order, late deliveries, slow acks, refused sends,
 * disconnections, rebalances — seeded, so a run can be replayed. None of them loses a message the
 * broker confirmed: a fault only ever delivers late, more than once, or in another order.
 *
 * It wraps the memory adapter as a transport (the adapter interface), so core's settlement, retries
 * and send buffering see the faults exactly as they would see a real broker's.
 */
import {
  type Adapter,
  type AdapterFactory,
  type BrowsedMessage,
  ConnectionError,
  type ConsumeSpec,
  type Deliver,
  type Delivery,
  delay,
  type LogPosition,
  type LogSpec,
  type MemoryBroker,
  memory,
  type OutgoingMessage,
  type PartitionLag,
  type QueueSpec,
  type ReadSpec,
  type ResetTarget,
  type Settled,
  type Subscription,
  type SubscriptionSpec,
  type TopicSpec,
} from '@omnibus/core';
import { type Random, seededRandom } from './random.js';
import { real } from './timers.js';

/** Rates of the faults drawn per delivery (probabilities in [0, 1]) and their sizes. */
export interface FaultRates {
  /** A delivery is delivered a second time (a redelivered copy). @default 0 */
  readonly duplicate?: number;
  /** An ack never reaches the broker: the message is delivered again, marked redelivered. @default 0 */
  readonly lostAck?: number;
  /**
   * An unkeyed queue or topic delivery is held back and handed over after the ones that follow it
   * (keyed messages and logs keep their order, as the capability `ordering: 'key'` promises). @default 0
   */
  readonly reorder?: number;
  /** Every delivery arrives this much later (or a seeded draw in `[min, max]`), in order. @default 0 */
  readonly delayMs?: number | readonly [number, number];
  /** Every ack takes this long to be confirmed by the broker (the handler's slot stays busy). @default 0 */
  readonly slowAckMs?: number;
}

export interface FaultOptions extends FaultRates {
  /** The next this-many sends (send, publish, append) fail with a retriable `ConnectionError`. @default 0 */
  readonly failSends?: number;
  /** Rates for a destination (queue, topic or log name), used instead of the global ones there. */
  readonly destinations?: Readonly<Record<string, FaultRates>>;
}

export type FaultName =
  | 'duplicate'
  | 'lostAck'
  | 'reorder'
  | 'delay'
  | 'slowAck'
  | 'failSend'
  | 'disconnect'
  | 'rebalance';

/** One fault that happened: what, where, and to which message. */
export interface InjectedFault {
  readonly fault: FaultName;
  readonly destination: string;
  readonly id?: string | undefined;
}

/** The faults of one test broker: change them while a test runs, and see what was injected. */
export interface Faults {
  /** The seed of the draws: the same seed and the same test give the same faults. */
  readonly seed: number;
  /** Every fault injected so far, in order. */
  readonly injected: readonly InjectedFault[];
  /** Replaces the rates, for every destination or for one. */
  set(rates: FaultRates, destination?: string): void;
  /** Stops every rate fault and pending send failure (faults already under way finish). */
  clear(): void;
  /** The next `count` sends (to `destination`, or any) fail with a retriable `ConnectionError`. */
  failSends(count: number, options?: { readonly destination?: string }): void;
  /**
   * Drops every connection to the broker for `ms`: state events (`reconnecting`, then `connected`),
   * sends wait in core's send buffer, unacked messages are redelivered. Resolves when it is back.
   */
  disconnect(ms: number): Promise<void>;
  /** Rebalances a log's consumer group now; false when the group has no reader. */
  rebalance(log: string, group: string): boolean;
}

type Kind = 'queue' | 'topic' | 'log';
type QueuedItem = Parameters<NonNullable<ReturnType<MemoryBroker['addressed']>>['enqueue']>[0];

/** The state behind `Faults`, shared by every connection of one test broker. */
export class FaultInjector implements Faults {
  readonly injected: InjectedFault[] = [];
  private readonly random: Random;
  private global: FaultRates;
  private readonly perDestination = new Map<string, FaultRates>();
  private failing: { destination: string | undefined; left: number }[] = [];

  constructor(
    private readonly broker: MemoryBroker,
    seed: number,
    options: FaultOptions = {},
  ) {
    this.random = seededRandom(seed);
    const { failSends, destinations, ...rates } = options;
    this.global = checked(rates);
    for (const [name, r] of Object.entries(destinations ?? {})) this.perDestination.set(name, checked(r));
    if (failSends !== undefined && failSends > 0) this.failSends(failSends);
  }

  get seed(): number {
    return this.random.seed;
  }

  set(rates: FaultRates, destination?: string): void {
    if (destination === undefined) this.global = checked(rates);
    else this.perDestination.set(destination, checked(rates));
  }

  clear(): void {
    this.global = {};
    this.perDestination.clear();
    this.failing = [];
  }

  failSends(count: number, options: { readonly destination?: string } = {}): void {
    if (!Number.isInteger(count) || count < 0) throw new RangeError(`failSends: ${count} is not a count`);
    this.failing.push({ destination: options.destination, left: count });
  }

  async disconnect(ms: number): Promise<void> {
    this.record('disconnect', '*');
    await this.broker.restart(ms);
  }

  rebalance(log: string, group: string): boolean {
    const done = this.broker.rebalance(log, group);
    if (done) this.record('rebalance', log);
    return done;
  }

  /** A memory adapter factory whose connections suffer these faults. */
  factory(): AdapterFactory {
    const inner = memory();
    return {
      name: inner.name,
      schemes: inner.schemes,
      hostOptional: true,
      create: async (target, context) => new FaultyAdapter(await inner.create(target, context), this),
    };
  }

  /** Throws the injected send failure, when one is due for this destination. */
  beforeSend(destination: string): void {
    const due = this.failing.find(
      (f) => f.left > 0 && (f.destination === undefined || f.destination === destination),
    );
    if (due === undefined) return;
    due.left--;
    this.record('failSend', destination);
    throw new ConnectionError(`send to "${destination}" failed (injected fault, ${due.left} more to fail)`, {
      adapter: 'memory',
      retriable: true,
    });
  }

  /** Wraps a subscription's delivery callback with this broker's delivery faults. */
  wrap(kind: Kind, destination: string, deliver: Deliver): Deliver {
    const line = { last: 0, pending: 0 };
    const held: (() => void)[] = [];
    let flushing = false;
    const release = (d: Delivery): Settled => {
      const rates = this.rates(destination);
      if (kind !== 'log' && d.key === undefined && this.random.chance(rates.reorder)) {
        this.record('reorder', destination, d.id);
        return new Promise<void>((resolve) => {
          held.push(() => void deliver(d).then(resolve));
          if (flushing) return;
          flushing = true;
          // After what arrives in this turn: the held messages go behind it.
          real.setImmediate(() => {
            flushing = false;
            for (const next of held.splice(0)) next();
          });
        });
      }
      return deliver(d);
    };
    return (original) => {
      const rates = this.rates(destination);
      const d = this.withAckFaults(kind, destination, original, deliver);
      if (this.random.chance(rates.duplicate)) this.duplicate(kind, destination, original, deliver);
      const ms = this.delayOf(rates.delayMs);
      if (ms === 0 && line.pending === 0) return release(d);
      // A delay line: later deliveries never overtake earlier ones.
      if (ms > 0) this.record('delay', destination, d.id);
      const at = Math.max(line.last, Date.now() + ms);
      line.last = at;
      line.pending++;
      return new Promise<void>((resolve) => {
        setTimeout(() => {
          line.pending--;
          void release(d).then(resolve);
        }, at - Date.now());
      });
    };
  }

  private withAckFaults(kind: Kind, destination: string, d: Delivery, deliver: Deliver): Delivery {
    const ack = async (): Promise<void> => {
      const rates = this.rates(destination);
      if (rates.slowAckMs !== undefined && rates.slowAckMs > 0) {
        this.record('slowAck', destination, d.id);
        await delay(rates.slowAckMs);
      }
      if (!this.random.chance(rates.lostAck)) return d.ack();
      this.record('lostAck', destination, d.id);
      if (kind !== 'log' && d.release !== undefined) {
        // The broker never heard of the ack: the message is still its, and goes out again.
        d.release();
        return;
      }
      // A log reader that lost its commit reads the record again.
      await d.ack();
      real.setImmediate(() => void deliver(redelivery(d)));
    };
    return {
      ...messageOf(d),
      retryAddress: d.retryAddress,
      ack,
      ...(d.requeue === undefined ? {} : { requeue: () => d.requeue!() }),
      ...(d.release === undefined ? {} : { release: () => d.release!() }),
    };
  }

  private duplicate(kind: Kind, destination: string, d: Delivery, deliver: Deliver): void {
    this.record('duplicate', destination, d.id);
    const queue =
      kind === 'log' || d.retryAddress === undefined ? undefined : this.broker.addressed(d.retryAddress);
    if (queue !== undefined) {
      // A second copy on the broker, redelivered: settled on its own, like any delivery.
      queue.enqueue({ ...(d.raw as QueuedItem), redelivered: true }, 0, true);
      return;
    }
    real.setImmediate(() => void deliver(redelivery(d)));
  }

  private rates(destination: string): FaultRates {
    return this.perDestination.get(destination) ?? this.global;
  }

  private delayOf(delayMs: FaultRates['delayMs']): number {
    if (delayMs === undefined) return 0;
    if (typeof delayMs === 'number') return delayMs;
    return this.random.between(delayMs[0], delayMs[1]);
  }

  private record(fault: FaultName, destination: string, id?: string): void {
    this.injected.push({ fault, destination, id });
  }
}

/** The memory adapter, with the injector between it and core. */
class FaultyAdapter implements Adapter {
  constructor(
    private readonly inner: Adapter,
    private readonly faults: FaultInjector,
  ) {}

  get name(): string {
    return this.inner.name;
  }

  get capabilities() {
    return this.inner.capabilities;
  }

  async send(queue: QueueSpec, message: OutgoingMessage): Promise<void> {
    this.faults.beforeSend(queue.name);
    return this.inner.send(queue, message);
  }

  async publish(topic: TopicSpec, message: OutgoingMessage): Promise<void> {
    this.faults.beforeSend(topic.name);
    return this.inner.publish(topic, message);
  }

  async append(log: LogSpec, message: OutgoingMessage, position?: boolean): Promise<LogPosition | undefined> {
    this.faults.beforeSend(log.name);
    return this.inner.append(log, message, position);
  }

  sendTo(address: string, message: OutgoingMessage): Promise<void> {
    return this.inner.sendTo(address, message);
  }

  consume(queue: QueueSpec, spec: ConsumeSpec, deliver: Deliver): Promise<Subscription> {
    return this.inner.consume(queue, spec, this.faults.wrap('queue', queue.name, deliver));
  }

  subscribe(topic: TopicSpec, spec: SubscriptionSpec, deliver: Deliver): Promise<Subscription> {
    return this.inner.subscribe(topic, spec, this.faults.wrap('topic', topic.name, deliver));
  }

  read(log: LogSpec, spec: ReadSpec, deliver: Deliver): Promise<Subscription> {
    return this.inner.read(log, spec, this.faults.wrap('log', log.name, deliver));
  }

  // Operations pass through untouched: faults concern the messages, not the admin calls.
  depth(queue: QueueSpec): Promise<number> {
    return this.inner.depth(queue);
  }

  purge(queue: QueueSpec): Promise<number | undefined> {
    return this.inner.purge(queue);
  }

  browse(queue: QueueSpec, limit: number): Promise<BrowsedMessage[]> {
    return this.inner.browse(queue, limit);
  }

  subscriptionAddress(topic: TopicSpec, durable: string): Promise<string> {
    return this.inner.subscriptionAddress(topic, durable);
  }

  deleteSubscription(topic: TopicSpec, durable: string): Promise<boolean> {
    return this.inner.deleteSubscription(topic, durable);
  }

  resetGroup(log: LogSpec, group: string, to: ResetTarget): Promise<void> {
    return this.inner.resetGroup(log, group, to);
  }

  groupLag(log: LogSpec, group: string): Promise<PartitionLag[]> {
    return this.inner.groupLag(log, group);
  }

  close(): Promise<void> {
    return this.inner.close();
  }
}

/** The same message delivered again, outside the broker's bookkeeping (its settlement is a no-op). */
function redelivery(d: Delivery): Delivery {
  return { ...messageOf(d), redelivered: true, ack: async () => undefined };
}

/**
 * What a delivery says about its message, without its settlement or its retry address: a wrapper
 * adds its own. Listed field by field, since a delivery may be a class instance with state of its own.
 */
function messageOf(d: Delivery): Omit<Delivery, 'ack' | 'requeue' | 'release' | 'retryAddress'> {
  return {
    body: d.body,
    headers: d.headers,
    id: d.id,
    contentType: d.contentType,
    key: d.key,
    subject: d.subject,
    priority: d.priority,
    timestamp: d.timestamp,
    attempt: d.attempt,
    redelivered: d.redelivered,
    position: d.position,
    raw: d.raw,
  };
}

function checked(rates: FaultRates): FaultRates {
  for (const name of ['duplicate', 'lostAck', 'reorder'] as const) {
    const p = rates[name];
    if (p !== undefined && !(p >= 0 && p <= 1))
      throw new RangeError(`fault rate ${name}: ${p} is not in [0, 1]`);
  }
  const delayMs = rates.delayMs;
  const ms = delayMs === undefined ? [] : typeof delayMs === 'number' ? [delayMs] : [...delayMs];
  if (rates.slowAckMs !== undefined) ms.push(rates.slowAckMs);
  for (const value of ms) if (!(value >= 0)) throw new RangeError(`fault delay ${value} ms is not >= 0`);
  return { ...rates };
}
