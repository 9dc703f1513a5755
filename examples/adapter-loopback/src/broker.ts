/**
 * The loopback broker: the "server" side of the loopback adapter, in this process. It stores frames
 * — bytes and a header bag of strings, as a wire protocol carries them — in queues, and knows
 * nothing of Omnibus: no attempts, no dead letters, no envelope. Queues have competing consumers
 * with prefetch credit, ack, requeue to the original place, and delayed puts; topics route each
 * frame by subject to their subscriptions' queues. A named subscription (durable) keeps its queue
 * while nobody consumes it; a plain one lives as long as its consumer, like an exclusive queue.
 */
import { randomUUID } from 'node:crypto';
import { compilePattern, delay, type SubjectMatcher } from '@omnibus/core';

/** What travels: bytes and a header bag, never an object graph. */
export interface Frame {
  readonly body: Uint8Array;
  readonly headers: Record<string, string>;
}

/** A consumer on a queue: how many more frames it may hold unsettled, and where they go. */
export interface QueueConsumer {
  credit: number;
  push(frame: Frame, redelivered: boolean, tag: number): void;
}

/** A connection to the broker: a restart drops it and brings it back. */
export interface Session {
  dropped(): void;
  restored(): void;
}

interface Entry {
  readonly frame: Frame;
  /** Its place in the queue: a requeued frame goes back there. */
  readonly seq: number;
  redelivered: boolean;
}

export class Queue {
  private readonly ready: Entry[] = [];
  private readonly unacked = new Map<number, { entry: Entry; consumer: QueueConsumer }>();
  private readonly consumers: QueueConsumer[] = [];
  private seq = 0;
  private tags = 0;
  private turn = 0;

  constructor(readonly address: string) {}

  /** Stores a copy of the frame; a delayed one becomes visible after `delayMs`. */
  put(frame: Frame, delayMs = 0): void {
    const own = { body: frame.body.slice(), headers: { ...frame.headers } };
    if (delayMs > 0) {
      setTimeout(() => this.put(own), delayMs).unref();
      return;
    }
    this.ready.push({ frame: own, seq: this.seq++, redelivered: false });
    this.pump();
  }

  attach(consumer: QueueConsumer): void {
    this.consumers.push(consumer);
    this.pump();
  }

  /** Removes a consumer; what it held unsettled goes back to the queue, marked redelivered. */
  detach(consumer: QueueConsumer): void {
    const at = this.consumers.indexOf(consumer);
    if (at >= 0) this.consumers.splice(at, 1);
    for (const [tag, held] of this.unacked) if (held.consumer === consumer) this.requeue(tag);
  }

  detachAll(): void {
    for (const consumer of [...this.consumers]) this.detach(consumer);
  }

  /** Settles a delivery; a tag that is not outstanding (its consumer is gone) changes nothing. */
  ack(tag: number): void {
    this.settle(tag);
    this.pump();
  }

  requeue(tag: number): void {
    const held = this.settle(tag);
    if (held !== undefined) {
      held.entry.redelivered = true;
      const at = this.ready.findIndex((e) => e.seq > held.entry.seq);
      this.ready.splice(at < 0 ? this.ready.length : at, 0, held.entry);
    }
    this.pump();
  }

  private settle(tag: number): { entry: Entry; consumer: QueueConsumer } | undefined {
    const held = this.unacked.get(tag);
    if (held === undefined) return undefined;
    this.unacked.delete(tag);
    held.consumer.credit++;
    return held;
  }

  /** Hands ready frames, in order, to consumers with credit, round robin. */
  private pump(): void {
    while (this.ready.length > 0) {
      const consumer = this.nextWithCredit();
      if (consumer === undefined) return;
      const entry = this.ready.shift()!;
      const tag = ++this.tags;
      consumer.credit--;
      this.unacked.set(tag, { entry, consumer });
      // Each delivery gets its own bytes and headers, as off a wire.
      consumer.push(
        { body: entry.frame.body.slice(), headers: { ...entry.frame.headers } },
        entry.redelivered,
        tag,
      );
    }
  }

  private nextWithCredit(): QueueConsumer | undefined {
    const n = this.consumers.length;
    for (let i = 0; i < n; i++) {
      const consumer = this.consumers[(this.turn + i) % n]!;
      if (consumer.credit > 0) {
        this.turn = (this.turn + i + 1) % n;
        return consumer;
      }
    }
    return undefined;
  }
}

interface Binding {
  readonly match: SubjectMatcher;
  readonly queue: Queue;
  readonly durable: boolean;
}

export class LoopbackBroker {
  /** Every queue by address: `queue/<name>`, or `topic/<topic>/<subscription>`. */
  private readonly queues = new Map<string, Queue>();
  private readonly topics = new Map<string, Map<string, Binding>>();
  private readonly sessions = new Set<Session>();

  constructor(readonly name: string) {}

  join(session: Session): void {
    this.sessions.add(session);
  }

  leave(session: Session): void {
    this.sessions.delete(session);
  }

  /** The queue called `name`, created on first use. */
  queue(name: string): Queue {
    return this.at(`queue/${name}`);
  }

  /** The queue at an address, if it still exists (a plain subscription's goes with it). */
  addressed(address: string): Queue | undefined {
    return this.queues.get(address);
  }

  /** A subscription's queue, bound to `topic` for subjects matching `pattern`. */
  bind(topic: string, pattern: string, durable?: string): Queue {
    const queue = this.at(`topic/${topic}/${durable ?? `~${randomUUID()}`}`);
    ensure(this.topics, topic, () => new Map()).set(queue.address, {
      match: compilePattern(pattern),
      queue,
      durable: durable !== undefined,
    });
    return queue;
  }

  unbind(topic: string, queue: Queue): void {
    this.topics.get(topic)?.delete(queue.address);
    this.queues.delete(queue.address);
  }

  /** Routes a frame to every subscription of `topic` whose pattern matches `subject`. */
  publish(topic: string, subject: string | undefined, frame: Frame): void {
    for (const binding of this.topics.get(topic)?.values() ?? []) {
      if (binding.match(subject)) binding.queue.put(frame);
    }
  }

  /**
   * Simulates a restart: every connection drops (consumers go, unacked frames return to their
   * queues, plain subscriptions vanish with their queues) and comes back after `downMs`. Queues and
   * durable subscriptions keep what they hold, as on a broker with persistent storage.
   */
  async restart(downMs = 50): Promise<void> {
    for (const queue of this.queues.values()) queue.detachAll();
    for (const [topic, bindings] of this.topics) {
      for (const binding of bindings.values()) if (!binding.durable) this.unbind(topic, binding.queue);
    }
    const sessions = [...this.sessions];
    for (const session of sessions) session.dropped();
    await delay(downMs);
    for (const session of sessions) if (this.sessions.has(session)) session.restored();
  }

  private at(address: string): Queue {
    return ensure(this.queues, address, () => new Queue(address));
  }
}

const brokers = new Map<string, LoopbackBroker>();

/** The broker behind `loopback://name` (`default` when unnamed); its methods are the broker's own client. */
export function loopbackBroker(name = 'default'): LoopbackBroker {
  return ensure(brokers, name, () => new LoopbackBroker(name));
}

function ensure<K, V>(map: Map<K, V>, key: K, make: () => V): V {
  let value = map.get(key);
  if (value === undefined) {
    value = make();
    map.set(key, value);
  }
  return value;
}
