/**
 * Batches (docs/semantics.md, "Batches"): `sendBatch`/`publishBatch`/`appendBatch` resolve with a
 * result per message in order, and one bad message fails alone; batch consumption hands arrays of
 * at most `size` messages, flushes a partial batch after `waitMs`, settles each message on its own
 * (ack, retry, dead letter), keeps per-key order, and loses or duplicates nothing.
 */
import { type Message, type StandardSchemaV1, ValidationError } from '@omnibus/core';
import { expect } from 'vitest';
import {
  type ContractContext,
  deadLetters,
  defineTests,
  rejectsWith,
  requires,
  waitFor,
} from '../harness.js';

/** A schema that takes numbers only, as any Standard Schema library would write it. */
const numbers: StandardSchemaV1<number, number> = {
  '~standard': {
    version: 1,
    vendor: 'contract',
    validate: (value) =>
      typeof value === 'number' ? { value } : { issues: [{ message: 'expected a number' }] },
  },
};

/** Records each batch a batch handler gets, and every message in them. */
function batches<T>(onBatch?: (messages: Message<T>[]) => unknown) {
  const sizes: number[] = [];
  const messages: Message<T>[] = [];
  return {
    sizes,
    messages,
    handler: async (batch: Message<T>[]) => {
      sizes.push(batch.length);
      messages.push(...batch);
      await onBatch?.(batch);
    },
  };
}

/** Sends `count` numbered messages with `sendBatch` and checks every result is ok. */
async function sendNumbers(t: ContractContext, name: string, count: number, key?: (n: number) => string) {
  const producer = await t.connect();
  const entries = Array.from({ length: count }, (_, n) =>
    key === undefined ? { payload: n } : { payload: n, key: key(n) },
  );
  const results = await producer.queue<number>(name).sendBatch(entries);
  expect(results.map((r) => r.ok)).toEqual(entries.map(() => true));
  return results;
}

export const batchTests = defineTests([
  {
    id: 'batch: sendBatch resolves with one result per message, in order, and each arrives once',
    ...requires('queue'),
    async run(t) {
      const name = t.name('q');
      const results = await sendNumbers(t, name, 30);
      const ids = results.map((r) => (r.ok ? r.id : ''));
      expect(new Set(ids).size).toBe(30);
      expect(await (await t.connect()).queue(name).sendBatch([])).toEqual([]);
      const got: Message<number>[] = [];
      await (await t.connect()).queue<number>(name).consume((m) => void got.push(m));
      await waitFor(() => got.length >= 30, `30 messages (got ${got.length})`, t.timeoutMs);
      // Each message is the one its result names.
      const byId = new Map(got.map((m) => [m.id, m.payload]));
      expect(ids.map((id) => byId.get(id))).toEqual([...Array(30).keys()]);
      expect(got.length).toBe(30);
    },
  },
  {
    id: 'batch: an invalid entry of sendBatch fails alone, with a ValidationError naming its index',
    ...requires('queue'),
    async run(t) {
      const name = t.name('q');
      const bus = await t.connect();
      const queue = bus.queue<number>(name, { schema: numbers });
      const results = await queue.sendBatch([
        { payload: 0 },
        { payload: 'one' as unknown as number },
        { payload: 2, id: '' },
        null as unknown as { payload: number },
        { payload: 4 },
      ]);
      expect(results.map((r) => r.ok)).toEqual([true, false, false, false, true]);
      for (const index of [1, 2, 3]) {
        const failed = results[index]!;
        if (failed.ok) throw new Error(`entry ${index} should have failed`);
        expect(failed.index).toBe(index);
        expect(failed.error).toBeInstanceOf(ValidationError);
        expect(failed.error.message).toContain(`entry ${index}`);
      }
      const got: number[] = [];
      await (await t.connect()).queue<number>(name).consume((m) => void got.push(m.payload));
      await waitFor(() => got.length >= 2, `the 2 valid messages (got ${got.length})`, t.timeoutMs);
      // A marker proves nothing of the invalid entries follows.
      await queue.send(99);
      await waitFor(() => got.includes(99), 'the marker', t.timeoutMs);
      expect([...got].sort((a, b) => a - b)).toEqual([0, 4, 99]);
      await rejectsWith(
        () => queue.sendBatch('nope' as unknown as { payload: number }[]),
        ValidationError,
        'OMNIBUS_VALIDATION',
      );
    },
  },
  {
    id: 'batch: publishBatch routes each message by its own subject; a bad subject fails alone',
    ...requires('topic'),
    async run(t) {
      const name = t.name('t');
      const got: string[] = [];
      await (await t.connect())
        .topic<string>(name)
        .subscribe('orders.created', (m) => void got.push(m.payload));
      const topic = (await t.connect()).topic<string>(name);
      const results = await topic.publishBatch([
        { payload: 'c1', subject: 'orders.created' },
        { payload: 'd1', subject: 'orders.deleted' },
        { payload: 'bad', subject: 'orders.#' },
        { payload: 'c2', subject: 'orders.created' },
      ]);
      expect(results.map((r) => r.ok)).toEqual([true, true, false, true]);
      const bad = results[2]!;
      if (bad.ok) throw new Error('the entry with a wildcard subject should have failed');
      expect(bad.index).toBe(2);
      expect(bad.error).toBeInstanceOf(ValidationError);
      await waitFor(() => got.length >= 2, `2 messages (got ${got.length})`, t.timeoutMs);
      await topic.publish('marker', { subject: 'orders.created' });
      await waitFor(() => got.includes('marker'), 'the marker', t.timeoutMs);
      expect([...got].sort()).toEqual(['c1', 'c2', 'marker']);
    },
  },
  {
    id: 'batch: appendBatch returns each position, increasing in batch order within a key',
    ...requires('log', 'replay'),
    async run(t) {
      const bus = await t.connect();
      const log = bus.log<number>(t.name('l'), { partitions: 2 });
      const results = await log.appendBatch(
        Array.from({ length: 12 }, (_, n) => ({ payload: n, key: n % 2 === 0 ? 'even' : 'odd' })),
      );
      const positions = results.map((r) => {
        if (!r.ok) throw r.error;
        return r.position;
      });
      for (const parity of [0, 1]) {
        const mine = positions.filter((_, n) => n % 2 === parity);
        expect(new Set(mine.map((p) => p.partition)).size).toBe(1);
        for (let i = 1; i < mine.length; i++) expect(mine[i]!.offset).toBeGreaterThan(mine[i - 1]!.offset);
      }
      const got = new Map<number, { partition: number; offset: number }>();
      await (await t.connect())
        .log<number>(log.name, { partitions: 2 })
        .read((m) => void got.set(m.payload, m.position), { from: 'earliest' });
      await waitFor(() => got.size >= 12, `12 messages (got ${got.size})`, t.timeoutMs);
      expect(positions.map((_, n) => got.get(n))).toEqual(positions);
    },
  },
  {
    id: 'batch: consume with batch hands arrays of at most size, nothing lost or duplicated',
    ...requires('queue'),
    async run(t) {
      const name = t.name('q');
      await sendNumbers(t, name, 50);
      const seen = batches<number>();
      await (await t.connect())
        .queue<number>(name)
        .consume(seen.handler, { batch: { size: 8, waitMs: 500 }, prefetch: 16 });
      await waitFor(
        () => seen.messages.length >= 50,
        `50 messages (got ${seen.messages.length})`,
        t.timeoutMs,
      );
      expect(Math.max(...seen.sizes)).toBeLessThanOrEqual(8);
      // 50 messages waited before the consumer came: batches of more than one formed.
      expect(Math.max(...seen.sizes)).toBeGreaterThan(1);
      expect(seen.messages.map((m) => m.payload).sort((a, b) => a - b)).toEqual([...Array(50).keys()]);
      expect(new Set(seen.messages.map((m) => m.id)).size).toBe(50);
    },
  },
  {
    id: 'batch: waitMs hands over a partial batch',
    ...requires('queue'),
    async run(t) {
      const name = t.name('q');
      const seen = batches<number>();
      await (await t.connect())
        .queue<number>(name)
        .consume(seen.handler, { batch: { size: 100, waitMs: 100 }, prefetch: 100 });
      await sendNumbers(t, name, 3);
      await waitFor(() => seen.messages.length >= 3, `3 messages (got ${seen.messages.length})`, t.timeoutMs);
      expect(seen.sizes.every((size) => size < 100)).toBe(true);
      expect(seen.messages.map((m) => m.payload).sort()).toEqual([0, 1, 2]);
    },
  },
  {
    id: 'batch: each message of a batch settles on its own: ack, retry, reject, dead letter after maxAttempts',
    ...requires('queue', 'deadLetter'),
    async run(t) {
      const name = t.name('q');
      const dead = await deadLetters<string>(await t.connect(), `${name}.dlq`);
      const handled: string[] = [];
      await (await t.connect()).queue<string>(name, { maxAttempts: 2 }).consume(
        async (batch) => {
          for (const m of batch) {
            handled.push(`${m.payload}#${m.attempt}`);
            if (m.payload === 'poison') await m.reject('poison');
            else if (m.payload === 'flaky' && m.attempt === 1) await m.retry({ reason: 'flaky once' });
            else if (m.payload === 'doomed') await m.retry({ reason: 'never works' });
            // 'ok' (and 'flaky' the second time) is left alone: the handler resolving acks it.
          }
        },
        { batch: { size: 4, waitMs: 100 } },
      );
      const producer = (await t.connect()).queue<string>(name);
      const results = await producer.sendBatch(
        ['ok', 'flaky', 'poison', 'doomed'].map((payload) => ({ payload })),
      );
      expect(results.every((r) => r.ok)).toBe(true);
      await waitFor(
        () => dead.messages.length >= 2,
        `2 dead letters (got ${dead.messages.length})`,
        t.timeoutMs,
      );
      await waitFor(
        () => handled.includes('flaky#2'),
        `flaky's second attempt (handled: ${handled})`,
        t.timeoutMs,
      );
      await producer.send('marker');
      await waitFor(() => handled.includes('marker#1'), 'the marker', t.timeoutMs);
      expect([...handled].sort()).toEqual([
        'doomed#1',
        'doomed#2',
        'flaky#1',
        'flaky#2',
        'marker#1',
        'ok#1',
        'poison#1',
      ]);
      expect(dead.payloads().sort()).toEqual(['doomed', 'poison']);
    },
  },
  {
    id: 'batch: a batch handler that throws retries the messages it did not settle',
    ...requires('queue'),
    async run(t) {
      const name = t.name('q');
      const handled: string[] = [];
      await (await t.connect()).queue<string>(name).consume(
        async (batch) => {
          for (const m of batch) handled.push(`${m.payload}#${m.attempt}`);
          const a = batch.find((m) => m.payload === 'a');
          if (a !== undefined) await a.ack();
          if (batch.some((m) => m.payload === 'b' && m.attempt === 1)) throw new Error('b fails once');
        },
        { batch: { size: 2, waitMs: 200 } },
      );
      const producer = (await t.connect()).queue<string>(name);
      await producer.sendBatch([{ payload: 'a' }, { payload: 'b' }]);
      await waitFor(() => handled.includes('b#2'), `b's second attempt (handled: ${handled})`, t.timeoutMs);
      await producer.send('marker');
      await waitFor(() => handled.includes('marker#1'), 'the marker', t.timeoutMs);
      expect([...handled].sort()).toEqual(['a#1', 'b#1', 'b#2', 'marker#1']);
    },
  },
  {
    id: 'batch: per-key order holds inside and across batches, a retried keyed message included',
    when: (c) => c.queue !== 'none' && c.ordering === 'key',
    whenText: 'queue is none or ordering is not key',
    async run(t) {
      const name = t.name('q');
      const keys = ['k0', 'k1', 'k2', 'k3'];
      await sendNumbers(t, name, 40, (n) => keys[n % 4]!);
      const order = new Map<string, number[]>(keys.map((k) => [k, []]));
      let failed = false;
      await (await t.connect()).queue<number>(name).consume(
        async (batch) => {
          for (const m of batch) {
            if (m.payload === 0 && !failed) {
              failed = true;
              await m.retry({ reason: 'first of k0 fails once' });
              continue;
            }
            order.get(m.key!)!.push(m.payload);
          }
        },
        { batch: { size: 6, waitMs: 50 }, prefetch: 12 },
      );
      const total = () => [...order.values()].reduce((sum, list) => sum + list.length, 0);
      await waitFor(() => total() >= 40, `40 successes (got ${total()})`, t.timeoutMs);
      keys.forEach((key, k) => {
        expect(order.get(key), key).toEqual(Array.from({ length: 10 }, (_, i) => i * 4 + k));
      });
    },
  },
  {
    id: 'batch: a log read in batches gets every message in position order, arrays of at most size',
    ...requires('log', 'replay'),
    async run(t) {
      const bus = await t.connect();
      const log = bus.log<number>(t.name('l'));
      const appended = await log.appendBatch(Array.from({ length: 25 }, (_, n) => ({ payload: n })));
      expect(appended.every((r) => r.ok)).toBe(true);
      const seen = batches<number>();
      await (await t.connect())
        .log<number>(log.name)
        .read(seen.handler, { from: 'earliest', batch: { size: 10, waitMs: 200 } });
      await waitFor(
        () => seen.messages.length >= 25,
        `25 messages (got ${seen.messages.length})`,
        t.timeoutMs,
      );
      expect(Math.max(...seen.sizes)).toBeLessThanOrEqual(10);
      expect(seen.messages.map((m) => m.payload)).toEqual([...Array(25).keys()]);
      const offsets = seen.messages.map((m) => m.position!.offset);
      expect(offsets).toEqual([...offsets].sort((a, b) => a - b));
    },
  },
  {
    id: 'batch: a group reading in batches commits what it handled and resumes after it',
    ...requires('log', 'consumerGroups', 'replay'),
    async run(t) {
      const name = t.name('l');
      const group = t.name('g');
      const log = (await t.connect()).log<number>(name);
      await log.appendBatch(Array.from({ length: 10 }, (_, n) => ({ payload: n })));
      const first = batches<number>();
      const reader = await (await t.connect())
        .log<number>(name)
        .read(first.handler, { group, from: 'earliest', batch: { size: 4, waitMs: 100 } });
      await waitFor(
        () => first.messages.length >= 10,
        `10 messages (got ${first.messages.length})`,
        t.timeoutMs,
      );
      await reader.close();
      await log.appendBatch(Array.from({ length: 5 }, (_, n) => ({ payload: 10 + n })));
      const second = batches<number>();
      await (await t.connect())
        .log<number>(name)
        .read(second.handler, { group, from: 'earliest', batch: { size: 4, waitMs: 100 } });
      await waitFor(
        () => second.messages.length >= 5,
        `5 messages (got ${second.messages.length})`,
        t.timeoutMs,
      );
      expect(first.messages.map((m) => m.payload)).toEqual([...Array(10).keys()]);
      expect(second.messages.map((m) => m.payload)).toEqual([10, 11, 12, 13, 14]);
    },
  },
  {
    id: 'batch: a message that fails the schema is dead-lettered without reaching the batch handler',
    ...requires('queue', 'deadLetter'),
    async run(t) {
      const name = t.name('q');
      const dead = await deadLetters(await t.connect(), `${name}.dlq`);
      const seen = batches<number>();
      await (await t.connect())
        .queue<number>(name, { schema: numbers })
        .consume(seen.handler, { batch: { size: 5, waitMs: 100 } });
      // Sent without the schema, as another application (or an older version) would.
      const results = await (await t.connect())
        .queue<unknown>(name)
        .sendBatch([{ payload: 1 }, { payload: 'two' }, { payload: 3 }]);
      expect(results.every((r) => r.ok)).toBe(true);
      await waitFor(() => dead.messages.length >= 1, 'the invalid message dead-lettered', t.timeoutMs);
      await waitFor(
        () => seen.messages.length >= 2,
        `2 valid messages (got ${seen.messages.length})`,
        t.timeoutMs,
      );
      expect(dead.payloads()).toEqual(['two']);
      expect(seen.messages.map((m) => m.payload).sort()).toEqual([1, 3]);
    },
  },
  {
    id: 'batch: a batch subscription gets what is published after it, in arrays of at most size',
    ...requires('topic'),
    async run(t) {
      const name = t.name('t');
      const seen = batches<number>();
      await (await t.connect())
        .topic<number>(name)
        .subscribe('n', seen.handler, { batch: { size: 5, waitMs: 100 } });
      const results = await (await t.connect())
        .topic<number>(name)
        .publishBatch(Array.from({ length: 12 }, (_, n) => ({ payload: n, subject: 'n' })));
      expect(results.every((r) => r.ok)).toBe(true);
      await waitFor(
        () => seen.messages.length >= 12,
        `12 messages (got ${seen.messages.length})`,
        t.timeoutMs,
      );
      expect(Math.max(...seen.sizes)).toBeLessThanOrEqual(5);
      expect(seen.messages.map((m) => m.payload).sort((a, b) => a - b)).toEqual([...Array(12).keys()]);
    },
  },
  {
    id: 'batch: a prefetch below batch.size, and batch on messages(), are refused with ValidationError',
    ...requires('queue'),
    async run(t) {
      const queue = (await t.connect()).queue(t.name('q'));
      await rejectsWith(
        () => queue.consume(async () => undefined, { batch: { size: 10 }, prefetch: 5 }),
        ValidationError,
        'OMNIBUS_VALIDATION',
        /prefetch/,
      );
      await rejectsWith(
        () => queue.consume(async () => undefined, { batch: { size: 0 } }),
        ValidationError,
        'OMNIBUS_VALIDATION',
        /batch\.size/,
      );
      const iterator = queue.messages({ batch: { size: 2 } } as never);
      await rejectsWith(() => iterator.next(), ValidationError, 'OMNIBUS_VALIDATION', /batch/);
    },
  },
]);
