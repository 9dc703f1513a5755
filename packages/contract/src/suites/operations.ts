import {
  type Bus,
  HEADER,
  type SettleEvent,
  UnsupportedCapabilityError,
  ValidationError,
} from '@omnibus/core';
import { expect } from 'vitest';
import {
  type ContractContext,
  deadLetters,
  defineTests,
  expectOnlyMarker,
  recorder,
  rejectsWith,
  requires,
  waitFor,
} from '../harness.js';

/** Counts the dead letters the bus reports (the event fires once the dead-letter queue confirmed it). */
function deadLetterEvents(bus: Bus) {
  const events: SettleEvent[] = [];
  bus.on('deadLetter', (event) => void events.push(event));
  return {
    events,
    waitFor: (count: number, timeoutMs: number) =>
      waitFor(() => events.length >= count, `${count} dead letter(s) (got ${events.length})`, timeoutMs),
  };
}

/**
 * A queue whose consumer fails every message while `failing` is true (`maxAttempts` 1: each goes
 * straight to `<name>.dlq`) and records what it handles otherwise.
 */
async function failingQueue(t: ContractContext, payloads: readonly string[]) {
  const bus = await t.connect();
  const dead = deadLetterEvents(bus);
  const queue = bus.queue<string>(t.name('q'), { maxAttempts: 1 });
  const state = { failing: true };
  const handled = recorder<string>((m) => {
    if (state.failing) throw new Error(`boom ${m.payload}`);
  });
  // Application headers where the broker carries them (MQTT 3.1.1 carries core's own, not these).
  const headers = t.capabilities.headers === 'none' ? {} : { headers: { tenant: 'acme' } };
  const ids: string[] = [];
  for (const payload of payloads) ids.push((await queue.send(payload, headers)).id);
  const consumer = await queue.consume(handled.handler);
  await dead.waitFor(payloads.length, t.timeoutMs);
  return { bus, queue, state, handled, ids, dead, consumer };
}

/** Polls `read` until it gives `expected` (brokers may report counts a moment late), or fails. */
async function eventually<T>(read: () => Promise<T>, expected: T, what: string, timeoutMs: number) {
  let last: T | undefined;
  let done = false;
  const poll = async () => {
    while (!done) {
      last = await read();
      if (last === expected) return;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  };
  const polling = poll();
  try {
    await waitFor(() => last === expected, what, timeoutMs);
  } finally {
    done = true;
    await polling;
  }
  expect(last).toBe(expected);
}

export const operationsTests = defineTests([
  {
    id: 'operations: depth counts the messages waiting in a queue',
    ...requires('queue', 'depth'),
    async run(t) {
      const bus = await t.connect();
      const queue = bus.queue<number>(t.name('q'));
      expect(await queue.depth()).toBe(0);
      for (let i = 0; i < 3; i++) await queue.send(i);
      expect(await queue.depth()).toBe(3);
      const got = recorder<number>();
      await queue.consume(got.handler);
      await got.waitFor(3, t.timeoutMs);
      await eventually(() => queue.depth(), 0, 'depth 0 once consumed', t.timeoutMs);
    },
  },
  {
    id: 'operations: purge removes what a queue holds',
    ...requires('queue', 'purge'),
    async run(t) {
      const bus = await t.connect();
      const queue = bus.queue<number>(t.name('q'));
      for (let i = 0; i < 3; i++) await queue.send(i);
      const purged = await queue.purge();
      if (purged !== undefined) expect(purged).toBe(3);
      await expectOnlyMarker(bus, queue.name, t.timeoutMs);
      expect([0, undefined]).toContain(await bus.queue(t.name('never-used')).purge());
    },
  },
  {
    id: 'operations: peek shows dead letters with where and why they failed, without consuming them',
    ...requires('queue', 'deadLetter', 'browse'),
    async run(t) {
      const { bus, queue, ids } = await failingQueue(t, ['a', 'b']);
      const letters = bus.deadLetters({ queue: queue.name });
      expect(letters.queue).toBe(`${queue.name}.dlq`);
      const first = await letters.peek(10);
      expect(first.map((l) => l.id)).toEqual(ids);
      expect(first.map((l) => l.payload)).toEqual(['a', 'b']);
      const [a] = first;
      expect(a!.origin).toEqual({ kind: 'queue', name: queue.name });
      expect(a!.reason).toBe('boom a');
      expect(a!.attempts).toBe(1);
      if (t.capabilities.headers !== 'none') expect(a!.headers).toMatchObject({ tenant: 'acme' });
      expect(Object.keys(a!.headers).filter((h) => h.startsWith('x-omnibus-dead-letter'))).toEqual([]);
      expect(a!.failedAt).toBeInstanceOf(Date);
      expect(a!.redrives).toBe(0);
      expect((await letters.peek(1)).map((l) => l.id)).toEqual([ids[0]]);
      // Still there: a consumer of the dead-letter queue gets both.
      const dead = await deadLetters<string>(bus, letters.queue);
      await dead.waitFor(2, t.timeoutMs);
      expect(dead.messages.map((m) => m.id)).toEqual(ids);
    },
  },
  {
    id: 'operations: count gives how many dead letters wait',
    ...requires('queue', 'deadLetter', 'depth'),
    async run(t) {
      const { bus, queue } = await failingQueue(t, ['a', 'b', 'c']);
      const letters = bus.deadLetters({ queue: queue.name });
      expect(await letters.count()).toBe(3);
      expect(await bus.deadLetters(`${t.name('nothing')}.dlq`).count()).toBe(0);
    },
  },
  {
    id: 'operations: redrive sends dead letters back to their queue with their id, attempt 1 and no dead-letter headers',
    ...requires('queue', 'deadLetter', 'redrive'),
    async run(t) {
      const { bus, queue, state, handled, ids } = await failingQueue(t, ['a', 'b']);
      state.failing = false;
      const result = await bus.deadLetters({ queue: queue.name }).redrive();
      expect(result).toMatchObject({ moved: 2, skipped: 0, failed: 0 });
      await handled.waitFor(4, t.timeoutMs);
      const redriven = handled.messages.slice(2);
      expect(redriven.map((m) => m.id)).toEqual(ids);
      expect(redriven.map((m) => m.payload)).toEqual(['a', 'b']);
      for (const m of redriven) {
        expect(m.attempt).toBe(1);
        if (t.capabilities.headers !== 'none') expect(m.headers.tenant).toBe('acme');
        expect(m.headers[HEADER.redriveRun]).toBe(result.runId);
        expect(m.headers[HEADER.redrives]).toBe('1');
        expect(Object.keys(m.headers).filter((h) => h.startsWith('x-omnibus-dead-letter'))).toEqual([]);
      }
      if (t.capabilities.depth !== 'none')
        expect(await bus.deadLetters({ queue: queue.name }).count()).toBe(0);
    },
  },
  {
    id: 'operations: a redriven message that fails again waits in the dead letters for the next run (no ping-pong)',
    ...requires('queue', 'deadLetter', 'redrive'),
    async run(t) {
      const { bus, queue, dead, ids } = await failingQueue(t, ['a', 'b']);
      const letters = bus.deadLetters({ queue: queue.name });
      const first = await letters.redrive();
      expect(first).toMatchObject({ moved: 2, failed: 0 });
      await dead.waitFor(4, t.timeoutMs);
      expect(dead.events.length).toBe(4);
      const second = await letters.redrive({ limit: 1 });
      expect(second.moved).toBe(1);
      expect(second.runId).not.toBe(first.runId);
      await dead.waitFor(5, t.timeoutMs);
      if (t.capabilities.browse !== 'none') {
        const left = await letters.peek(10);
        expect(left.map((l) => l.id).sort()).toEqual([...ids].sort());
        expect(left.map((l) => l.redrives).sort()).toEqual([1, 2]);
      }
    },
  },
  {
    id: 'operations: a redrive run ends by itself, and a message failing again returns to the dead letters once',
    ...requires('queue', 'deadLetter', 'redrive'),
    async run(t) {
      const { bus, queue, dead, ids, handled, consumer } = await failingQueue(t, ['a', 'b']);
      const letters = bus.deadLetters({ queue: queue.name });
      // No idle end in sight: the run ends at its count (depth) or at its own marker coming back.
      const runs = letters.redrive({ idleMs: 2 ** 31 - 1 });
      const ended = { done: false };
      void runs.finally(() => {
        ended.done = true;
      });
      await waitFor(() => ended.done, 'the redrive run to end', t.timeoutMs * 2);
      const result = await runs;
      expect(result).toMatchObject({ moved: 2, skipped: 0, failed: 0 });
      await dead.waitFor(4, t.timeoutMs);
      await handled.waitFor(4, t.timeoutMs);
      expect(handled.messages.slice(2).map((m) => m.id)).toEqual(ids);
      await consumer.close();
      // Each came back once, from this run: the dead-letter queue holds the two and nothing more.
      const left = await deadLetters<string>(bus, letters.queue);
      await left.waitFor(2, t.timeoutMs);
      await bus.queue(letters.queue).send('marker');
      await left.waitFor(3, t.timeoutMs);
      // The one that ended the run went back when it closed: in order, or (MQTT, STOMP) resent behind.
      expect(left.payloads()[2]).toBe('marker');
      expect(
        left.messages
          .slice(0, 2)
          .map((m) => m.id)
          .sort(),
      ).toEqual([...ids].sort());
      for (const m of left.messages.slice(0, 2)) {
        expect(m.headers[HEADER.redriveRun]).toBe(result.runId);
        expect(m.headers[HEADER.redrives]).toBe('1');
      }
      expect(dead.events.length).toBe(4);
    },
  },
  {
    id: 'operations: redrive takes a limit and a filter, and leaves the others',
    ...requires('queue', 'deadLetter', 'redrive'),
    async run(t) {
      const { bus, queue, state, handled } = await failingQueue(t, ['a', 'b', 'c']);
      state.failing = false;
      const letters = bus.deadLetters({ queue: queue.name });
      expect(await letters.redrive({ limit: 1 })).toMatchObject({ moved: 1, failed: 0 });
      await handled.waitFor(4, t.timeoutMs);
      expect(handled.payloads().slice(3)).toEqual(['a']);
      const filtered = await letters.redrive({ filter: (l) => l.payload === 'c' });
      expect(filtered).toMatchObject({ moved: 1, skipped: 1, failed: 0 });
      await handled.waitFor(5, t.timeoutMs);
      expect(handled.payloads().slice(3)).toEqual(['a', 'c']);
      expect(await letters.redrive()).toMatchObject({ moved: 1, skipped: 0 });
      await handled.waitFor(6, t.timeoutMs);
      expect(handled.payloads().slice(3)).toEqual(['a', 'c', 'b']);
    },
  },
  {
    id: "operations: a durable subscription's dead letters have their own queue and go back to it alone",
    ...requires('topic', 'durableSubscriptions', 'deadLetter', 'redriveSubscription'),
    async run(t) {
      const bus = await t.connect();
      const dead = deadLetterEvents(bus);
      const topic = bus.topic<string>(t.name('t'));
      const [a, b] = [t.name('a'), t.name('b')];
      const state = { failing: true };
      const gotA = recorder<string>(() => {
        if (state.failing) throw new Error('a says no');
      });
      const gotB = recorder<string>();
      await topic.subscribe('#', gotA.handler, { durable: a, maxAttempts: 1 });
      await topic.subscribe('#', gotB.handler, { durable: b, maxAttempts: 1 });
      const { id } = await topic.publish('order', { subject: 'orders.created' });
      await dead.waitFor(1, t.timeoutMs);
      const letters = bus.deadLetters({ topic: topic.name, subscription: a });
      expect(letters.queue).toBe(`${topic.name}.${a}.dlq`);
      expect(dead.events[0]!.deadLetter).toBe(letters.queue);
      expect(bus.deadLetters({ topic: topic.name, subscription: b }).queue).not.toBe(letters.queue);
      if (t.capabilities.browse !== 'none') {
        const [letter] = await letters.peek(1);
        expect(letter!.origin).toEqual({ kind: 'topic', name: topic.name, subscription: a });
        expect(letter!.subject).toBe('orders.created');
      }
      state.failing = false;
      expect(await letters.redrive()).toMatchObject({ moved: 1, failed: 0 });
      await gotA.waitFor(2, t.timeoutMs);
      expect(gotA.messages[1]!.id).toBe(id);
      expect(gotA.messages[1]!.subject).toBe('orders.created');
      // b got the message once: a marker published after the redrive comes next.
      await topic.publish('marker', { subject: 'orders.created' });
      await gotB.waitFor(2, t.timeoutMs);
      expect(gotB.payloads()).toEqual(['order', 'marker']);
      await rejectsWith(
        () => bus.deadLetters({ topic: topic.name }).redrive(),
        ValidationError,
        'OMNIBUS_VALIDATION',
        /to/,
      );
    },
  },
  {
    id: "operations: a durable subscription's dead letters go to a queue with `to`, and without it only where it can reach the subscription alone",
    ...requires('topic', 'durableSubscriptions', 'deadLetter', 'queue', 'redrive'),
    async run(t) {
      const bus = await t.connect();
      const dead = deadLetterEvents(bus);
      const topic = bus.topic<string>(t.name('t'));
      const durable = t.name('d');
      await topic.subscribe(
        '#',
        () => {
          throw new Error('no');
        },
        { durable, maxAttempts: 1 },
      );
      await topic.publish('one');
      await topic.publish('two');
      await dead.waitFor(2, t.timeoutMs);
      const letters = bus.deadLetters({ topic: topic.name, subscription: durable });
      if (t.capabilities.redriveSubscription === 'none') {
        await rejectsWith(() => letters.redrive(), UnsupportedCapabilityError, 'OMNIBUS_UNSUPPORTED');
        // Named by its queue, the run stops at the first letter it cannot send back, and leaves it.
        const byName = await bus.deadLetters(letters.queue).redrive();
        expect(byName).toMatchObject({ moved: 0, skipped: 0, failed: 1 });
        expect(byName.error).toBeInstanceOf(UnsupportedCapabilityError);
        expect(byName.error!.message).toContain('redriveSubscription');
      }
      const to = t.name('retries');
      const result = await letters.redrive({ to, limit: 1 });
      expect(result).toMatchObject({ moved: 1, failed: 0 });
      const got = await deadLetters<string>(bus, to);
      await got.waitFor(1, t.timeoutMs);
      // The letter the refused run left went back to the front, or (MQTT, STOMP) was resent behind.
      expect(['one', 'two']).toContain(got.payloads()[0]);
      expect(got.payloads()).toHaveLength(1);
      expect(got.messages[0]!.headers[HEADER.redrives]).toBe('1');
    },
  },
  {
    id: 'operations: dead letters of a log group keep the group and have their own queue',
    ...requires('log', 'consumerGroups', 'deadLetter', 'queue'),
    async run(t) {
      const bus = await t.connect();
      const log = bus.log<string>(t.name('l'), { maxAttempts: 1 });
      const group = t.name('g');
      await log.append('poison');
      await log.read(
        () => {
          throw new Error('cannot');
        },
        { group, from: 'earliest' },
      );
      const letters = bus.deadLetters({ log: log.name, group });
      expect(letters.queue).toBe(`${log.name}.${group}.dlq`);
      const dead = await deadLetters<string>(bus, letters.queue);
      await dead.waitFor(1, t.timeoutMs);
      expect(dead.messages[0]!.headers[HEADER.deadLetterGroup]).toBe(group);
      expect(dead.messages[0]!.headers[HEADER.deadLetterOrigin]).toBe(log.name);
      if (t.capabilities.redrive !== 'none') {
        await rejectsWith(() => letters.redrive(), ValidationError, 'OMNIBUS_VALIDATION', /to/);
      }
    },
  },
  {
    id: 'operations: deleting a durable subscription removes it and what it held',
    ...requires('topic', 'durableSubscriptions', 'deleteSubscription'),
    async run(t) {
      const bus = await t.connect();
      const topic = bus.topic<string>(t.name('t'));
      const durable = t.name('d');
      const first = recorder<string>();
      const consumer = await topic.subscribe('#', first.handler, { durable });
      await rejectsWith(() => topic.deleteSubscription(durable), ValidationError, 'OMNIBUS_VALIDATION');
      await consumer.close();
      await topic.publish('while away');
      expect(await topic.deleteSubscription(durable)).toBe(true);
      expect(await topic.deleteSubscription(durable)).toBe(false);
      // Publishing goes on without it; a new subscription of that name starts empty.
      await topic.publish('after delete');
      const again = recorder<string>();
      await topic.subscribe('#', again.handler, { durable });
      await topic.publish('marker');
      await again.waitFor(1, t.timeoutMs);
      expect(again.payloads()).toEqual(['marker']);
      expect(first.payloads()).toEqual([]);
    },
  },
  {
    id: 'operations: a log group resets to earliest, latest and a timestamp',
    ...requires('log', 'consumerGroups', 'resetGroup'),
    async run(t) {
      const bus = await t.connect();
      const log = bus.log<string>(t.name('l'));
      const group = t.name('g');
      await log.append('a');
      await log.append('b');
      // c is sent in a later millisecond than a and b, so a reset to its time starts at c.
      const sentBefore = Date.now();
      await waitFor(() => Date.now() > sentBefore, 'the next millisecond', t.timeoutMs);
      await log.append('c');
      const readAll = async (count: number) => {
        const got = recorder<string>();
        const reader = await log.read(got.handler, { group, from: 'earliest' });
        await got.waitFor(count, t.timeoutMs);
        return { got, reader };
      };
      const first = await readAll(3);
      await rejectsWith(() => log.resetGroup(group, 'earliest'), ValidationError, 'OMNIBUS_VALIDATION');
      await first.reader.close();
      await log.resetGroup(group, 'earliest');
      const again = await readAll(3);
      expect(again.got.payloads()).toEqual(['a', 'b', 'c']);
      const cAt = again.got.messages[2]!.timestamp;
      await again.reader.close();
      await log.resetGroup(group, 'latest');
      await log.append('d');
      const latest = await readAll(1);
      expect(latest.got.payloads()).toEqual(['d']);
      await latest.reader.close();
      await log.resetGroup(group, { timestamp: cAt });
      const fromTime = await readAll(2);
      expect(fromTime.got.payloads()).toEqual(['c', 'd']);
      await rejectsWith(
        () => log.resetGroup(group, 'yesterday' as 'earliest'),
        ValidationError,
        'OMNIBUS_VALIDATION',
      );
    },
  },
  {
    id: "operations: lag is how far a group is behind the log's end",
    ...requires('log', 'consumerGroups', 'lag'),
    async run(t) {
      const bus = await t.connect();
      const log = bus.log<number>(t.name('l'));
      const group = t.name('g');
      for (let i = 0; i < 3; i++) await log.append(i);
      const before = await log.lag(group);
      expect(before.total).toBe(3);
      expect(before.partitions).toEqual([{ partition: 0, committed: undefined, end: 3, lag: 3 }]);
      const got = recorder<number>();
      const reader = await log.read(got.handler, { group, from: 'earliest' });
      await got.waitFor(3, t.timeoutMs);
      await reader.close();
      expect(await log.lag(group)).toEqual({
        total: 0,
        partitions: [{ partition: 0, committed: 3, end: 3, lag: 0 }],
      });
      await log.append(3);
      await log.append(4);
      expect((await log.lag(group)).total).toBe(2);
    },
  },
]);
