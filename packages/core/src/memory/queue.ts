import { CONFIRMED } from '../connection.js';
import { CapacityError } from '../errors.js';
import { Deque } from './deque.js';
import type { QueuedItem } from './types.js';
import { Unacked } from './unacked.js';

/**
 * Requeued messages come back on the next turn of the event loop, never in the same microtask run:
 * a handler that requeues forever must not starve timers and I/O. Taken at load, so a test's fake
 * timers (which replace the global) do not hold a requeued message until someone advances them.
 */
const { setImmediate: nextTurn, clearImmediate: cancelTurn } = globalThis;

/**
 * Ready messages a consumed queue holds before a send waits for its consumers (`flow`). Producer and
 * consumers share one thread: without it a producer that is cheaper per message than its consumers
 * fills the queue to `maxQueueLength` and every message waits behind that backlog.
 */
export const FLOW_THRESHOLD = 1024;

/** A consumer attached to a queue; `credit` is how many more deliveries it may have outstanding. */
export interface QueueConsumer {
  credit: number;
  readonly push: (item: QueuedItem, tag: number) => void;
}

interface Delayed {
  readonly item: QueuedItem;
  readonly dueAt: number;
}

/**
 * One in-memory queue: priority levels (FIFO within a level), delayed messages, unacked
 * deliveries by tag, and competing consumers served round-robin within their prefetch credit.
 * Bounded: ready, delayed and unacked together never exceed `limit()`.
 */
export class MemoryQueue {
  private readonly levels = new Map<number, Deque<QueuedItem>>();
  /** Priorities that have a level, highest first. */
  private priorities: number[] = [];
  private ready = 0;
  private readonly delayed: Delayed[] = [];
  private delayTimer: NodeJS.Timeout | undefined;
  private readonly unacked = new Unacked<QueuedItem, QueueConsumer>();
  private consumers: QueueConsumer[] = [];
  private turn = 0;
  private scheduled = false;
  private requeued: NodeJS.Immediate | undefined;
  /** Sends waiting for the consumers to catch up (`flow`), oldest first. */
  private readonly waiters = new Deque<() => void>();
  private releaseTimer: NodeJS.Immediate | undefined;

  constructor(
    readonly name: string,
    private readonly limit: () => number,
  ) {}

  /** Messages held: ready, delayed and unacked. */
  get depth(): number {
    return this.ready + this.delayed.length + this.unacked.size;
  }

  /** Messages ready for delivery now (not delayed, not out with a consumer). */
  get readyCount(): number {
    return this.ready;
  }

  get consumerCount(): number {
    return this.consumers.length;
  }

  /** Throws `CapacityError` when the queue is full, unless `force` (a message moving within the broker). */
  enqueue(item: QueuedItem, delayMs = 0, force = false): void {
    if (!force) this.assertRoom(1);
    if (delayMs > 0) {
      this.addDelayed({ item, dueAt: Date.now() + delayMs });
      return;
    }
    this.pushReady(item, false);
    this.schedule();
  }

  /**
   * What a send that just enqueued resolves with: `CONFIRMED`, or while consumers are attached and
   * more than `FLOW_THRESHOLD` messages wait for them, a promise that resolves once they have taken
   * one off per waiting send, or on the next turn of the event loop at the latest (a consumer that
   * is stuck slows its producers down; it never holds them).
   */
  flow(): Promise<void> {
    if (this.ready <= FLOW_THRESHOLD || this.consumers.length === 0) return CONFIRMED;
    this.releaseTimer ??= nextTurn(() => {
      this.releaseTimer = undefined;
      this.release(this.waiters.length);
    });
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  private release(count: number): void {
    for (let i = 0; i < count; i++) {
      const wake = this.waiters.shift();
      if (wake === undefined) break;
      wake();
    }
    if (this.waiters.length === 0 && this.releaseTimer !== undefined) {
      cancelTurn(this.releaseTimer);
      this.releaseTimer = undefined;
    }
  }

  assertRoom(count: number): void {
    const limit = this.limit();
    if (this.depth + count > limit) {
      throw new CapacityError(
        `queue "${this.name}" is full (${limit} messages); consume faster or raise maxQueueLength`,
        limit,
        { adapter: 'memory' },
      );
    }
  }

  addConsumer(consumer: QueueConsumer): void {
    this.consumers.push(consumer);
    this.refTimer();
    this.schedule();
  }

  /** Detaches a consumer; its unacked messages go back to the front, in order, marked redelivered. */
  removeConsumer(consumer: QueueConsumer): void {
    this.consumers = this.consumers.filter((c) => c !== consumer);
    if (this.consumers.length === 0) this.release(this.waiters.length);
    const mine = this.unacked.entries().filter(([, u]) => u.consumer === consumer);
    // Newest first, each to the front: the oldest ends up first.
    for (let i = mine.length - 1; i >= 0; i--) {
      const [tag, { item }] = mine[i]!;
      this.unacked.take(tag);
      this.pushReady({ ...item, redelivered: true }, true);
    }
    this.refTimer();
    this.schedule();
  }

  /** Removes an unacked delivery; undefined when the tag is unknown (already settled, or its consumer left). */
  settle(tag: number): QueuedItem | undefined {
    const item = this.take(tag);
    if (item !== undefined) this.schedule();
    return item;
  }

  /**
   * Puts an unacked delivery back at the front without counting an attempt. It is delivered again on
   * the next turn of the event loop, even when nothing else happens on the queue.
   */
  requeue(tag: number): void {
    const item = this.take(tag);
    if (item === undefined) return;
    this.pushReady({ ...item, redelivered: true }, true);
    this.requeued ??= nextTurn(() => {
      this.requeued = undefined;
      this.schedule();
    });
  }

  private take(tag: number): QueuedItem | undefined {
    const item = this.unacked.take(tag);
    if (item !== undefined) this.unacked.takenBy!.credit++;
    return item;
  }

  /** Up to `limit` ready messages in delivery order (priority, then FIFO), then delayed ones by due time; nothing changes. */
  browse(limit: number): QueuedItem[] {
    const out: QueuedItem[] = [];
    for (const priority of this.priorities) {
      const level = this.levels.get(priority)!;
      for (let i = 0; i < level.length && out.length < limit; i++) out.push(level.at(i)!);
    }
    for (const { item } of this.delayed) {
      if (out.length >= limit) break;
      out.push(item);
    }
    return out;
  }

  /** Removes every ready and delayed message (not those out with a consumer); how many. */
  purge(): number {
    const removed = this.ready + this.delayed.length;
    this.levels.clear();
    this.priorities = [];
    this.ready = 0;
    this.delayed.length = 0;
    if (this.delayTimer !== undefined) clearTimeout(this.delayTimer);
    this.delayTimer = undefined;
    return removed;
  }

  /** Drops every message and consumer (a deleted subscription). */
  clear(): void {
    this.levels.clear();
    this.priorities = [];
    this.ready = 0;
    this.delayed.length = 0;
    this.unacked.clear();
    this.consumers = [];
    if (this.delayTimer !== undefined) clearTimeout(this.delayTimer);
    this.delayTimer = undefined;
    if (this.requeued !== undefined) cancelTurn(this.requeued);
    this.requeued = undefined;
    this.release(this.waiters.length);
  }

  private pushReady(item: QueuedItem, front: boolean): void {
    const priority = item.message.priority;
    let level = this.levels.get(priority);
    if (level === undefined) {
      level = new Deque<QueuedItem>();
      this.levels.set(priority, level);
      this.priorities = [...this.levels.keys()].sort((a, b) => b - a);
    }
    if (front) level.unshift(item);
    else level.push(item);
    this.ready++;
  }

  private popReady(): QueuedItem | undefined {
    for (const priority of this.priorities) {
      const item = this.levels.get(priority)!.shift();
      if (item !== undefined) {
        this.ready--;
        return item;
      }
    }
    return undefined;
  }

  private schedule(): void {
    if (this.scheduled || this.ready === 0 || this.consumers.length === 0) return;
    this.scheduled = true;
    queueMicrotask(this.drainSoon);
  }

  /** `drain`, made once: scheduling a drain costs no closure. */
  private readonly drainSoon = (): void => this.drain();

  private drain(): void {
    this.scheduled = false;
    let delivered = 0;
    while (this.ready > 0) {
      const consumer = this.nextConsumer();
      if (consumer === undefined) break;
      const item = this.popReady()!;
      const tag = this.unacked.add(item, consumer);
      consumer.credit--;
      delivered++;
      consumer.push(item, tag);
    }
    // One waiting send goes on per message taken off; all of them once the backlog is gone.
    if (this.waiters.length > 0) this.release(this.ready <= FLOW_THRESHOLD ? this.waiters.length : delivered);
  }

  private nextConsumer(): QueueConsumer | undefined {
    const count = this.consumers.length;
    for (let i = 0; i < count; i++) {
      const consumer = this.consumers[(this.turn + i) % count]!;
      if (consumer.credit > 0) {
        this.turn = (this.turn + i + 1) % count;
        return consumer;
      }
    }
    return undefined;
  }

  private addDelayed(entry: Delayed): void {
    let at = this.delayed.length;
    while (at > 0 && this.delayed[at - 1]!.dueAt > entry.dueAt) at--;
    this.delayed.splice(at, 0, entry);
    if (at === 0) this.armTimer();
  }

  private armTimer(): void {
    if (this.delayTimer !== undefined) clearTimeout(this.delayTimer);
    this.delayTimer = undefined;
    const first = this.delayed[0];
    if (first === undefined) return;
    this.delayTimer = setTimeout(() => this.releaseDue(), Math.max(0, first.dueAt - Date.now()));
    this.refTimer();
  }

  /** A delayed message keeps the process alive only while someone consumes the queue, as a socket would. */
  private refTimer(): void {
    if (this.delayTimer === undefined) return;
    if (this.consumers.length > 0) this.delayTimer.ref();
    else this.delayTimer.unref();
  }

  private releaseDue(): void {
    this.delayTimer = undefined;
    const now = Date.now();
    while (this.delayed.length > 0 && this.delayed[0]!.dueAt <= now) {
      this.pushReady(this.delayed.shift()!.item, false);
    }
    this.armTimer();
    this.schedule();
  }
}
