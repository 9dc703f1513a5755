/**
 * What `omnibus check` runs: a short, safe subset of the contract suite's behaviour, each probe on
 * destinations of its own (`omnibus-check-<run>-<probe>`), every message it sends consumed again.
 * A probe throws `ProbeFailure` when the broker does not do what its capability claims.
 */
import {
  type Bus,
  type Capabilities,
  type Feature,
  HEADER,
  type LogPosition,
  type Message,
  UnsupportedCapabilityError,
} from '@omnibus/core';

export class ProbeFailure extends Error {}

export interface ProbeContext {
  /** The check's connection. */
  readonly bus: Bus;
  /** Another connection (closed by the check), for what must outlive one. */
  connect(): Promise<Bus>;
  /** A destination name unique to this run; recorded as left on the broker. */
  /** A name unique to this run (the same suffix, the same name); with a kind, recorded as left on the broker. */
  name(suffix: string, kind?: 'queue' | 'topic' | 'log' | 'subscription' | 'group'): string;
  readonly capabilities: Capabilities;
  readonly timeoutMs: number;
}

export interface Probe {
  /** What it proves, in a few words. */
  readonly title: string;
  /** The capabilities it proves (it runs when all are claimed, i.e. not `none`). */
  readonly features: readonly Feature[];
  run(t: ProbeContext): Promise<void>;
}

/** Collects messages and resolves when `n` have arrived, or fails at the deadline. */
function collector<T>(timeoutMs: number) {
  const messages: Message<T>[] = [];
  let wake: (() => void) | undefined;
  return {
    messages,
    handler: (message: Message<T>) => {
      messages.push(message);
      wake?.();
    },
    async waitFor(n: number, what: string): Promise<Message<T>[]> {
      const deadline = Date.now() + timeoutMs;
      while (messages.length < n) {
        const left = deadline - Date.now();
        if (left <= 0)
          throw new ProbeFailure(`${what}: ${messages.length} of ${n} messages within ${timeoutMs} ms`);
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, left);
          wake = () => {
            clearTimeout(timer);
            resolve();
          };
        });
      }
      return messages;
    },
    /** Waits for `n` messages and fails unless their payloads, in order, are `expected`. */
    async expectPayloads(n: number, what: string, expected: readonly T[], label: string): Promise<void> {
      expectEqual(
        (await this.waitFor(n, what)).map((m) => m.payload),
        expected,
        label,
      );
    },
  };
}

interface Closable {
  close(): Promise<void>;
}

/** Runs `body`, then closes what it used (one by one, in order), whether it passed or failed. */
async function closing(used: Closable | readonly Closable[], body: () => Promise<unknown>): Promise<void> {
  try {
    await body();
  } finally {
    for (const resource of Array.isArray(used) ? used : [used]) await resource.close();
  }
}

function expectEqual(actual: unknown, expected: unknown, what: string): void {
  const a = JSON.stringify(actual);
  const e = JSON.stringify(expected);
  if (a !== e) throw new ProbeFailure(`${what}: expected ${e}, got ${a}`);
}

const queueRoundTrip: Probe = {
  title: 'a message sent before its consumer waits, then arrives once with its id, key and payload',
  features: ['queue'],
  async run(t) {
    const queue = t.bus.queue(t.name('queue', 'queue'));
    const { id } = await queue.send({ check: 'queue' }, { key: 'k1' });
    const got = collector(t.timeoutMs);
    const consumer = await queue.consume(got.handler);
    await closing(consumer, async () => {
      const [m] = await got.waitFor(1, 'round trip');
      expectEqual([m?.id, m?.key, m?.payload], [id, 'k1', { check: 'queue' }], 'the message received');
    });
  },
};

const headers: Probe = {
  title: 'application headers travel with the message',
  features: ['queue', 'headers'],
  async run(t) {
    const queue = t.bus.queue(t.name('headers', 'queue'));
    const sent = { 'trace-id': 'abc-123', note: 'héllo ✓' };
    await queue.send('h', { headers: sent });
    const got = collector(t.timeoutMs);
    const consumer = await queue.consume(got.handler);
    await closing(consumer, async () => {
      const [m] = await got.waitFor(1, 'headers');
      expectEqual(
        { 'trace-id': m?.headers['trace-id'], note: m?.headers.note },
        sent,
        'the headers received',
      );
    });
  },
};

const topicFanOut: Probe = {
  title: 'every subscription receives every message published after it',
  features: ['topic'],
  async run(t) {
    const topic = t.bus.topic<number>(t.name('fanout', 'topic'));
    const a = collector<number>(t.timeoutMs);
    const b = collector<number>(t.timeoutMs);
    const subs = [await topic.subscribe('#', a.handler), await topic.subscribe('#', b.handler)];
    await closing(subs, async () => {
      for (const n of [1, 2]) await topic.publish(n, { subject: 'check' });
      await a.expectPayloads(2, 'first subscription', [1, 2], 'first');
      await b.expectPayloads(2, 'second subscription', [1, 2], 'second');
    });
  },
};

const routing: Probe = {
  title: '* matches one word and # any number; others are not delivered',
  features: ['topic', 'routing'],
  async run(t) {
    const topic = t.bus.topic<string>(t.name('routing', 'topic'));
    const star = collector<string>(t.timeoutMs);
    const hash = collector<string>(t.timeoutMs);
    const subs = [
      await topic.subscribe('orders.*.created', star.handler),
      await topic.subscribe('orders.#', hash.handler),
    ];
    await closing(subs, async () => {
      for (const subject of [
        'orders.eu.created',
        'orders.eu.paid',
        'orders.eu.fr.created',
        'stock.eu.created',
      ])
        await topic.publish(subject, { subject });
      // A subscription keeps publish order: once the marker is in, anything wrongly matched is too.
      await topic.publish('marker', { subject: 'orders.us.created' });
      const s = await star.waitFor(2, 'orders.*.created');
      const h = await hash.waitFor(4, 'orders.#');
      expectEqual(
        s.map((m) => m.payload),
        ['orders.eu.created', 'marker'],
        'orders.*.created received',
      );
      expectEqual(
        h.map((m) => m.payload).sort(),
        ['marker', 'orders.eu.created', 'orders.eu.fr.created', 'orders.eu.paid'],
        'orders.# received',
      );
    });
  },
};

const durable: Probe = {
  title: 'a durable subscription receives what was published while it was away',
  features: ['topic', 'durableSubscriptions'],
  async run(t) {
    const name = t.name('durable', 'topic');
    const durableName = t.name('sub', 'subscription');
    const first = await t.connect();
    const a = collector<string>(t.timeoutMs);
    const sub = await first.topic<string>(name).subscribe('#', a.handler, { durable: durableName });
    await sub.close();
    await first.close();
    await t.bus.topic<string>(name).publish('while away', { subject: 'check' });
    const second = await t.connect();
    const b = collector<string>(t.timeoutMs);
    const again = await second.topic<string>(name).subscribe('#', b.handler, { durable: durableName });
    await closing(again, () => b.expectPayloads(1, 'after coming back', ['while away'], 'received'));
  },
};

const logReplay: Probe = {
  title: 'append returns increasing positions; a reader from earliest replays them in order',
  features: ['log', 'replay'],
  async run(t) {
    const log = t.bus.log<number>(t.name('log', 'log'));
    const positions: LogPosition[] = [];
    for (const n of [1, 2, 3]) positions.push((await log.append(n, { key: 'k' })).position);
    const offsets = positions.map((p) => p.offset);
    if (
      !positions.every((p) => p.partition === positions[0]?.partition) ||
      offsets.some((o, i) => i > 0 && o <= offsets[i - 1]!)
    )
      throw new ProbeFailure(`positions of one key: ${JSON.stringify(positions)}`);
    const got = collector<number>(t.timeoutMs);
    const reader = await log.read(got.handler, { from: 'earliest' });
    await closing(reader, () => got.expectPayloads(3, 'replay', [1, 2, 3], 'replayed'));
  },
};

const groups: Probe = {
  title: 'a group resumes after its last committed message',
  features: ['log', 'consumerGroups'],
  async run(t) {
    const log = t.bus.log<number>(t.name('group', 'log'));
    const group = t.name('reader', 'group');
    for (const n of [1, 2]) await log.append(n, { key: 'k' });
    const first = collector<number>(t.timeoutMs);
    const reader = await log.read(first.handler, { group, from: 'earliest' });
    await first.waitFor(2, 'first reader');
    await reader.close();
    await log.append(3, { key: 'k' });
    const second = collector<number>(t.timeoutMs);
    const again = await log.read(second.handler, { group, from: 'earliest' });
    await closing(again, () => second.expectPayloads(1, 'second reader', [3], 'resumed with'));
  },
};

const priority: Probe = {
  title: 'higher priority is delivered first',
  features: ['queue', 'priority'],
  async run(t) {
    const maxPriority = Math.min(t.capabilities.limits.maxPriority ?? 9, 9);
    const queue = t.bus.queue<number>(t.name('priority', 'queue'), { maxPriority });
    for (const p of [1, 5, maxPriority]) await queue.send(p, { priority: p });
    const got = collector<number>(t.timeoutMs);
    const consumer = await queue.consume(got.handler, { prefetch: 1 });
    await closing(consumer, () => got.expectPayloads(3, 'priority', [maxPriority, 5, 1], 'order'));
  },
};

const DELAY_MS = 1000;
const delay: Probe = {
  title: `a delayed message is not delivered before its delay (${DELAY_MS} ms)`,
  features: ['queue', 'delay'],
  async run(t) {
    const queue = t.bus.queue<string>(t.name('delay', 'queue'));
    const got = collector<string>(t.timeoutMs + DELAY_MS);
    const consumer = await queue.consume(got.handler);
    await closing(consumer, async () => {
      const sentAt = Date.now();
      await queue.send('delayed', { delayMs: DELAY_MS });
      await queue.send('now');
      const messages = await got.waitFor(2, 'delay');
      const waited = Date.now() - sentAt;
      expectEqual(
        messages.map((m) => m.payload),
        ['now', 'delayed'],
        'order',
      );
      if (waited < DELAY_MS) throw new ProbeFailure(`the delayed message arrived after ${waited} ms`);
    });
  },
};

const deadLetter: Probe = {
  title: 'a message that keeps failing is tried maxAttempts (2) times, then dead-lettered with the reason',
  features: ['queue', 'deadLetter'],
  async run(t) {
    const name = t.name('dead', 'queue');
    t.name('dead.dlq', 'queue');
    const attempts: number[] = [];
    const failing = await t.bus.queue(name, { maxAttempts: 2 }).consume((m) => {
      attempts.push(m.attempt);
      throw new Error('omnibus check: always fails');
    });
    const dead = collector(t.timeoutMs);
    const dlq = await t.bus.queue(`${name}.dlq`).consume(dead.handler);
    try {
      await t.bus.queue(name).send({ check: 'dead letter' });
      const [letter] = await dead.waitFor(1, 'dead letter');
      expectEqual(attempts, [1, 2], 'attempts');
      expectEqual(
        [letter?.headers[HEADER.deadLetterOrigin], letter?.headers[HEADER.deadLetterReason]],
        [name, 'omnibus check: always fails'],
        'dead-letter headers (origin, reason)',
      );
    } finally {
      await failing.close();
      await dlq.close();
    }
  },
};

/** Polls `read` until it gives `expected`, or fails at the deadline (brokers may count a moment late). */
async function eventually(read: () => Promise<unknown>, expected: unknown, what: string, timeoutMs: number) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const actual = await read();
    if (JSON.stringify(actual) === JSON.stringify(expected)) return;
    if (Date.now() > deadline) expectEqual(actual, expected, what);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

const depthProbe: Probe = {
  title: 'depth counts the messages waiting in a queue',
  features: ['queue', 'depth'],
  async run(t) {
    const queue = t.bus.queue(t.name('depth', 'queue'));
    await queue.send(1);
    await queue.send(2);
    await eventually(() => queue.depth(), 2, 'depth after two sends', t.timeoutMs);
    const got = collector(t.timeoutMs);
    const consumer = await queue.consume(got.handler);
    await closing(consumer, () => got.waitFor(2, 'consuming them'));
    await eventually(() => queue.depth(), 0, 'depth once consumed', t.timeoutMs);
  },
};

const purgeProbe: Probe = {
  title: 'purge removes what a queue holds',
  features: ['queue', 'purge'],
  async run(t) {
    const queue = t.bus.queue(t.name('purge', 'queue'));
    await queue.send('purged');
    await queue.purge();
    await queue.send('marker');
    const got = collector(t.timeoutMs);
    const consumer = await queue.consume(got.handler);
    await closing(consumer, () => got.expectPayloads(1, 'after the purge', ['marker'], 'left'));
  },
};

/** A queue whose consumer rejects one message: it waits in `<queue>.dlq` once this resolves. */
async function oneDeadLetter(t: ProbeContext, suffix: string) {
  const name = t.name(suffix, 'queue');
  t.name(`${suffix}.dlq`, 'queue');
  const state = { failing: true };
  const got = collector<string>(t.timeoutMs);
  let dead = 0;
  // Probes share the bus and run side by side: count this queue's dead letters only.
  const off = t.bus.on('deadLetter', (event) => {
    if (event.destination === name) dead++;
  });
  const consumer = await t.bus.queue<string>(name, { maxAttempts: 1 }).consume((m) => {
    if (state.failing) throw new Error('omnibus check: fails once');
    got.handler(m);
  });
  const { id } = await t.bus.queue(name).send('dead letter');
  await eventually(async () => dead, 1, 'the dead letter', t.timeoutMs);
  off();
  return { name, id, state, got, consumer };
}

const browseProbe: Probe = {
  title: 'peek shows a dead letter, its origin and reason, without consuming it',
  features: ['queue', 'deadLetter', 'browse'],
  async run(t) {
    const { name, id, consumer } = await oneDeadLetter(t, 'peek');
    await consumer.close();
    const letters = t.bus.deadLetters({ queue: name });
    for (let i = 0; i < 2; i++) {
      const [letter] = await letters.peek(1);
      expectEqual(
        [letter?.id, letter?.origin?.name, letter?.reason],
        [id, name, 'omnibus check: fails once'],
        'peeked dead letter (id, origin, reason)',
      );
    }
    const drained = collector(t.timeoutMs);
    const dlq = await t.bus.queue(letters.queue).consume(drained.handler);
    await closing(dlq, () => drained.waitFor(1, 'the dead letter, still there'));
  },
};

const redriveProbe: Probe = {
  title: 'redrive sends a dead letter back to its queue with its id',
  features: ['queue', 'deadLetter', 'redrive'],
  async run(t) {
    const { name, id, state, got, consumer } = await oneDeadLetter(t, 'redrive');
    state.failing = false;
    try {
      const result = await t.bus.deadLetters({ queue: name }).redrive();
      expectEqual(result.moved, 1, 'moved');
      expectEqual(
        (await got.waitFor(1, 'the redriven message')).map((m) => m.id),
        [id],
        'redriven id',
      );
    } finally {
      await consumer.close();
    }
  },
};

const redriveSubscriptionProbe: Probe = {
  title: "a durable subscription's dead letter goes back to it alone",
  features: ['topic', 'durableSubscriptions', 'deadLetter', 'redriveSubscription'],
  async run(t) {
    const name = t.name('rsub', 'topic');
    const [failing, other] = [t.name('rsub-a', 'subscription'), t.name('rsub-b', 'subscription')];
    t.name(`rsub.${failing}.dlq`, 'queue');
    const topic = t.bus.topic<string>(name);
    const state = { failing: true };
    const a = collector<string>(t.timeoutMs);
    const b = collector<string>(t.timeoutMs);
    let dead = 0;
    const off = t.bus.on('deadLetter', (event) => {
      if (event.destination === name) dead++;
    });
    const subs = [
      await topic.subscribe(
        '#',
        (m) => {
          if (state.failing) throw new Error('omnibus check: fails once');
          a.handler(m);
        },
        { durable: failing, maxAttempts: 1 },
      ),
      await topic.subscribe('#', b.handler, { durable: other }),
    ];
    try {
      const { id } = await topic.publish('dead letter');
      await eventually(async () => dead, 1, 'the dead letter', t.timeoutMs);
      state.failing = false;
      const result = await t.bus.deadLetters({ topic: name, subscription: failing }).redrive();
      expectEqual(result.moved, 1, 'moved');
      expectEqual(
        (await a.waitFor(1, 'the redriven message')).map((m) => m.id),
        [id],
        'redriven id',
      );
      // The other subscription got it once: a marker published after the redrive comes next.
      await topic.publish('marker');
      await b.expectPayloads(
        2,
        'the other subscription',
        ['dead letter', 'marker'],
        'the other subscription received',
      );
    } finally {
      off();
      for (const s of subs) await s.close();
    }
  },
};

const deleteSubscriptionProbe: Probe = {
  title: 'a durable subscription can be deleted, and then is gone',
  features: ['topic', 'durableSubscriptions', 'deleteSubscription'],
  async run(t) {
    const topic = t.bus.topic(t.name('delete', 'topic'));
    const name = t.name('deleted');
    const sub = await topic.subscribe('#', () => undefined, { durable: name });
    await sub.close();
    expectEqual(await topic.deleteSubscription(name), true, 'deleted');
    expectEqual(await topic.deleteSubscription(name), false, 'deleted again');
  },
};

const groupAdminProbe: Probe = {
  title: "a group's lag counts what it has not read, and a reset to earliest reads all again",
  features: ['log', 'consumerGroups', 'lag', 'resetGroup'],
  async run(t) {
    const log = t.bus.log(t.name('lag', 'log'));
    const group = t.name('lagging', 'group');
    await log.append(1);
    await log.append(2);
    await eventually(async () => (await log.lag(group)).total, 2, 'lag before reading', t.timeoutMs);
    const got = collector(t.timeoutMs);
    const reader = await log.read(got.handler, { group, from: 'earliest' });
    await closing(reader, () => got.waitFor(2, 'reading them'));
    await eventually(async () => (await log.lag(group)).total, 0, 'lag once read', t.timeoutMs);
    await log.resetGroup(group, 'earliest');
    await eventually(async () => (await log.lag(group)).total, 2, 'lag after a reset', t.timeoutMs);
  },
};

export const PROBES: readonly Probe[] = [
  queueRoundTrip,
  headers,
  topicFanOut,
  routing,
  durable,
  logReplay,
  groups,
  priority,
  delay,
  deadLetter,
  depthProbe,
  purgeProbe,
  browseProbe,
  redriveProbe,
  redriveSubscriptionProbe,
  deleteSubscriptionProbe,
  groupAdminProbe,
];

/**
 * Uses a feature the way an application would, for a feature the broker marks `none`: it must
 * throw `UnsupportedCapabilityError` before anything reaches the broker.
 */
const USE: Record<Feature, (t: ProbeContext) => Promise<unknown>> = {
  queue: async (t) => t.bus.queue(t.name('denied')),
  topic: async (t) => t.bus.topic(t.name('denied')),
  log: async (t) => t.bus.log(t.name('denied')),
  priority: async (t) => t.bus.queue(t.name('denied')).send('x', { priority: 1 }),
  replay: async (t) => t.bus.log(t.name('denied')).read(() => undefined, { from: 'earliest' }),
  routing: async (t) => t.bus.topic(t.name('denied')).subscribe('a.*', () => undefined),
  deadLetter: async (t) => t.bus.queue(t.name('denied'), { deadLetter: t.name('denied.dlq') }),
  delay: async (t) => t.bus.queue(t.name('denied')).send('x', { delayMs: 1000 }),
  headers: async (t) => t.bus.queue(t.name('denied')).send('x', { headers: { a: 'b' } }),
  durableSubscriptions: async (t) =>
    t.bus.topic(t.name('denied')).subscribe('#', () => undefined, { durable: 'omnibus-check' }),
  consumerGroups: async (t) =>
    t.bus.log(t.name('denied')).read(() => undefined, { group: 'omnibus-check', from: 'latest' }),
  depth: async (t) => t.bus.queue(t.name('denied')).depth(),
  purge: async (t) => t.bus.queue(t.name('denied')).purge(),
  browse: async (t) => t.bus.deadLetters({ queue: t.name('denied') }).peek(1),
  redrive: async (t) => t.bus.deadLetters({ queue: t.name('denied') }).redrive(),
  redriveSubscription: async (t) =>
    t.bus.deadLetters({ topic: t.name('denied'), subscription: 'omnibus-check' }).redrive(),
  deleteSubscription: async (t) => t.bus.topic(t.name('denied')).deleteSubscription('omnibus-check'),
  resetGroup: async (t) => t.bus.log(t.name('denied')).resetGroup('omnibus-check', 'earliest'),
  lag: async (t) => t.bus.log(t.name('denied')).lag('omnibus-check'),
};

/** Proves that using a `none` feature throws `UnsupportedCapabilityError` naming it. */
export async function proveDenied(feature: Feature, t: ProbeContext): Promise<void> {
  let outcome: unknown;
  try {
    const value = await USE[feature](t);
    // Something started despite `none`: close it before reporting.
    if (typeof (value as { close?: unknown } | null)?.close === 'function')
      await (value as { close(): Promise<void> }).close();
  } catch (error) {
    outcome = error;
  }
  if (!(outcome instanceof UnsupportedCapabilityError))
    throw new ProbeFailure(
      outcome === undefined
        ? `using ${feature} worked although the broker says none`
        : `using ${feature} threw ${outcome instanceof Error ? outcome.name : String(outcome)}, not UnsupportedCapabilityError`,
    );
  if (!outcome.missing.some((m) => m.feature === feature))
    throw new ProbeFailure(`UnsupportedCapabilityError does not name ${feature}`);
}

/** The probes to run: all, or those whose own feature (named last) is in scope. */
export function probesFor(scope: ReadonlySet<Feature> | undefined, capabilities: Capabilities): Probe[] {
  return PROBES.filter(
    (p) =>
      p.features.every((f) => capabilities[f] !== 'none') &&
      (scope === undefined || scope.has(p.features.at(-1)!)),
  );
}
