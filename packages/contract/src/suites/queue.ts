import { delay, HEADER } from '@omnibus/core';
import { expect } from 'vitest';
import {
  deadLetters,
  defineTests,
  expectDeadLetterHeaders,
  expectOnlyMarker,
  gate,
  recorder,
  requires,
  waitFor,
} from '../harness.js';

export const queueTests = defineTests([
  {
    id: 'queue: send resolves with an id and the consumer gets that message',
    ...requires('queue'),
    async run(t) {
      const bus = await t.connect();
      const queue = bus.queue<{ n: number }>(t.name('q'));
      const got = recorder<{ n: number }>();
      await queue.consume(got.handler);
      const { id } = await queue.send({ n: 1 });
      await got.waitFor(1, t.timeoutMs);
      expect(id).toBeTypeOf('string');
      expect(got.messages[0]!.id).toBe(id);
      expect(got.messages[0]!.payload).toEqual({ n: 1 });
      expect(got.messages[0]!.destination).toBe(queue.name);
      expect(got.messages[0]!.attempt).toBe(1);
      expect(got.messages[0]!.redelivered).toBe(false);
    },
  },
  {
    id: 'queue: a message sent with no consumer waits for one',
    ...requires('queue'),
    async run(t) {
      const bus = await t.connect();
      const name = t.name('q');
      await bus.queue(name).send('early');
      const later = await t.connect();
      const got = recorder();
      await later.queue(name).consume(got.handler);
      await got.waitFor(1, t.timeoutMs);
      expect(got.payloads()).toEqual(['early']);
    },
  },
  {
    id: 'queue: competing consumers handle each message exactly once',
    ...requires('queue'),
    async run(t) {
      const name = t.name('q');
      const [a, b] = [await t.connect(), await t.connect()];
      const seen: number[] = [];
      await a.queue<number>(name).consume((m) => void seen.push(m.payload));
      await b.queue<number>(name).consume((m) => void seen.push(m.payload));
      const producer = (await t.connect()).queue<number>(name);
      for (let i = 0; i < 40; i++) await producer.send(i);
      await waitFor(() => seen.length >= 40, '40 messages', t.timeoutMs);
      expect([...seen].sort((x, y) => x - y)).toEqual([...Array(40).keys()]);
    },
  },
  {
    id: 'queue: one consumer with concurrency 1 gets messages in send order',
    ...requires('queue', 'ordering'),
    async run(t) {
      const bus = await t.connect();
      const queue = bus.queue<number>(t.name('q'));
      for (let i = 0; i < 20; i++) await queue.send(i);
      const got = recorder<number>();
      await queue.consume(got.handler);
      await got.waitFor(20, t.timeoutMs);
      expect(got.payloads()).toEqual([...Array(20).keys()]);
    },
  },
  {
    id: 'queue: an acked message is not delivered again',
    ...requires('queue'),
    async run(t) {
      const name = t.name('q');
      const bus = await t.connect();
      const first = recorder();
      const consumer = await bus.queue(name).consume(first.handler);
      await bus.queue(name).send('once');
      await first.waitFor(1, t.timeoutMs);
      await consumer.close();
      await expectOnlyMarker(bus, name, t.timeoutMs);
    },
  },
  {
    id: 'queue: a handler that throws gets the message again with attempt 2',
    ...requires('queue'),
    async run(t) {
      const bus = await t.connect();
      const queue = bus.queue(t.name('q'));
      const got = recorder((m) => {
        if (m.attempt === 1) throw new Error('transient');
      });
      await queue.consume(got.handler);
      await queue.send('x');
      await got.waitFor(2, t.timeoutMs);
      expect(got.messages.map((m) => [m.attempt, m.redelivered])).toEqual([
        [1, false],
        [2, true],
      ]);
      expect(got.messages[1]!.id).toBe(got.messages[0]!.id);
    },
  },
  {
    id: 'queue: a failing message is tried exactly maxAttempts times, then dead-lettered with the reason',
    ...requires('queue', 'deadLetter'),
    async run(t) {
      const bus = await t.connect();
      const name = t.name('q');
      const attempts: number[] = [];
      await bus.queue(name, { maxAttempts: 3 }).consume((m) => {
        attempts.push(m.attempt);
        throw new Error('always broken');
      });
      const dead = await deadLetters(bus, `${name}.dlq`);
      // Application headers travel only where the adapter has them; the dead-letter headers always do.
      const headers = t.capabilities.headers === 'none' ? {} : { headers: { tenant: 'acme' } };
      await bus.queue(name).send({ order: 7 }, headers);
      await dead.waitFor(1, t.timeoutMs);
      const letter = dead.messages[0]!;
      expect(attempts).toEqual([1, 2, 3]);
      expect(letter.payload).toEqual({ order: 7 });
      if (t.capabilities.headers !== 'none') expect(letter.headers.tenant).toBe('acme');
      expectDeadLetterHeaders(letter, { origin: name, kind: 'queue', reason: 'always broken', attempts: 3 });
    },
  },
  {
    id: 'queue: reject() dead-letters at once with the given reason',
    ...requires('queue', 'deadLetter'),
    async run(t) {
      const bus = await t.connect();
      const name = t.name('q');
      let calls = 0;
      await bus.queue(name).consume(async (m) => {
        calls++;
        await m.reject('poison pill');
      });
      const dead = await deadLetters(bus, `${name}.dlq`);
      await bus.queue(name).send('bad');
      await dead.waitFor(1, t.timeoutMs);
      expect(calls).toBe(1);
      expect(dead.messages[0]!.headers[HEADER.deadLetterReason]).toBe('poison pill');
      expect(dead.messages[0]!.headers[HEADER.deadLetterAttempts]).toBe('1');
    },
  },
  {
    id: 'queue: deadLetter option names the dead-letter queue',
    ...requires('queue', 'deadLetter'),
    async run(t) {
      const bus = await t.connect();
      const name = t.name('q');
      const dlq = t.name('custom-dead');
      await bus.queue(name, { maxAttempts: 1, deadLetter: dlq }).consume(() => {
        throw new Error('no');
      });
      const dead = await deadLetters(bus, dlq);
      await bus.queue(name).send(1);
      await dead.waitFor(1, t.timeoutMs);
      expect(dead.messages[0]!.headers[HEADER.deadLetterOrigin]).toBe(name);
    },
  },
  {
    id: 'queue: retry({ delayMs }) redelivers after the delay with attempt 2',
    ...requires('queue'),
    async run(t) {
      const bus = await t.connect();
      const queue = bus.queue(t.name('q'));
      const times: number[] = [];
      const got = recorder(async (m) => {
        times.push(Date.now());
        if (m.attempt === 1) await m.retry({ delayMs: 300 });
      });
      await queue.consume(got.handler);
      await queue.send('later');
      await got.waitFor(2, t.timeoutMs);
      expect(got.messages[1]!.attempt).toBe(2);
      expect(times[1]! - times[0]!).toBeGreaterThanOrEqual(250);
    },
  },
  {
    id: 'queue: requeue() redelivers without counting an attempt',
    ...requires('queue'),
    async run(t) {
      const bus = await t.connect();
      const queue = bus.queue(t.name('q'));
      const got = recorder(async (m) => {
        if (!m.redelivered) await m.requeue();
      });
      await queue.consume(got.handler);
      await queue.send('again');
      await got.waitFor(2, t.timeoutMs);
      expect(got.messages.map((m) => [m.attempt, m.redelivered])).toEqual([
        [1, false],
        [1, true],
      ]);
    },
  },
  {
    id: 'queue: a message that fails its schema on receive is dead-lettered and the consumer goes on',
    ...requires('queue', 'deadLetter'),
    async run(t) {
      const bus = await t.connect();
      const name = t.name('q');
      const schema = numberSchema();
      const good = recorder<number>();
      await bus.queue(name, { schema }).consume(good.handler);
      const dead = await deadLetters(bus, `${name}.dlq`);
      await bus.queue(name).send('not a number');
      await bus.queue(name, { schema }).send(42);
      await good.waitFor(1, t.timeoutMs);
      await dead.waitFor(1, t.timeoutMs);
      expect(good.payloads()).toEqual([42]);
      expect(dead.messages[0]!.headers[HEADER.deadLetterReason]).toMatch(/expected a number/);
    },
  },
  {
    id: 'queue: a message that cannot be decoded is dead-lettered and the consumer goes on',
    ...requires('queue', 'deadLetter'),
    async run(t) {
      const bus = await t.connect();
      const name = t.name('q');
      const good = recorder();
      await bus.queue(name).consume(good.handler);
      const dead = await deadLetters<Uint8Array>(bus, `${name}.dlq`, { codec: 'bytes' });
      await bus.queue(name, { codec: 'text' }).send('{not json');
      await bus.queue(name).send({ ok: true });
      await good.waitFor(1, t.timeoutMs);
      await dead.waitFor(1, t.timeoutMs);
      expect(good.payloads()).toEqual([{ ok: true }]);
      expect(new TextDecoder().decode(dead.messages[0]!.payload)).toBe('{not json');
      expect(dead.messages[0]!.headers[HEADER.deadLetterReason]).toMatch(/JSON/);
    },
  },
  {
    id: 'queue: a handler that never resolves times out, its signal aborts, and the message is retried',
    ...requires('queue'),
    async run(t) {
      const bus = await t.connect();
      const queue = bus.queue(t.name('q'));
      let aborted = false;
      const got = recorder(async (m) => {
        if (m.attempt === 1) {
          m.signal.addEventListener('abort', () => {
            aborted = true;
          });
          await new Promise(() => {});
        }
      });
      await queue.consume(got.handler, { handlerTimeoutMs: 200 });
      await queue.send('slow');
      await got.waitFor(2, t.timeoutMs);
      expect(got.messages[1]!.attempt).toBe(2);
      expect(aborted).toBe(true);
    },
  },
  {
    id: 'queue: concurrency bounds the handlers running at once',
    ...requires('queue'),
    async run(t) {
      const bus = await t.connect();
      const queue = bus.queue<number>(t.name('q'));
      let running = 0;
      let peak = 0;
      const release = gate();
      const got = recorder<number>(async () => {
        running++;
        peak = Math.max(peak, running);
        await release.promise;
        running--;
      });
      for (let i = 0; i < 9; i++) await queue.send(i);
      await queue.consume(got.handler, { concurrency: 3, prefetch: 9 });
      await got.waitFor(3, t.timeoutMs);
      expect(running).toBe(3);
      release.open();
      await got.waitFor(9, t.timeoutMs);
      expect(peak).toBe(3);
    },
  },
  {
    id: 'queue: with concurrency, messages of one key run one at a time and in order',
    ...requires('queue', 'ordering'),
    async run(t) {
      const bus = await t.connect();
      const queue = bus.queue<{ key: string; n: number }>(t.name('q'));
      for (let n = 0; n < 10; n++) {
        for (const key of ['a', 'b', 'c']) await queue.send({ key, n }, { key });
      }
      const active = new Set<string>();
      const order: Record<string, number[]> = { a: [], b: [], c: [] };
      let overlap = false;
      let parallel = 0;
      const got = recorder<{ key: string; n: number }>(async (m) => {
        if (active.has(m.payload.key)) overlap = true;
        active.add(m.payload.key);
        parallel = Math.max(parallel, active.size);
        await delay(2);
        order[m.payload.key]!.push(m.payload.n);
        active.delete(m.payload.key);
      });
      await queue.consume(got.handler, { concurrency: 4, prefetch: 30 });
      const handled = () => Object.values(order).reduce((sum, list) => sum + list.length, 0);
      await waitFor(() => handled() === 30, '30 handled messages', t.timeoutMs);
      expect(overlap).toBe(false);
      expect(parallel).toBeGreaterThan(1);
      for (const key of ['a', 'b', 'c']) expect(order[key]).toEqual([...Array(10).keys()]);
    },
  },
  {
    id: 'queue: messages() yields messages; leaving the loop requeues the one not acked',
    ...requires('queue'),
    async run(t) {
      const bus = await t.connect();
      const queue = bus.queue<string>(t.name('q'));
      await queue.send('a');
      await queue.send('b');
      const seen: string[] = [];
      for await (const m of queue.messages()) {
        seen.push(m.payload);
        if (seen.length === 2) break;
      }
      expect(seen).toEqual(['a', 'b']);
      const again = recorder<string>();
      await queue.consume(again.handler);
      await queue.send('c');
      await again.waitFor(2, t.timeoutMs);
      expect(again.payloads().sort()).toEqual(['b', 'c']);
      expect(again.messages.find((m) => m.payload === 'b')!.redelivered).toBe(true);
    },
  },
  {
    id: 'queue: aborting the signal ends messages() and closes consume()',
    ...requires('queue'),
    async run(t) {
      const bus = await t.connect();
      const queue = bus.queue<string>(t.name('q'));
      const controller = new AbortController();
      await queue.send('one');
      const seen: string[] = [];
      for await (const m of queue.messages({ signal: controller.signal })) {
        seen.push(m.payload);
        await m.ack();
        controller.abort();
      }
      expect(seen).toEqual(['one']);
      const second = new AbortController();
      const consumer = await queue.consume(() => undefined, { signal: second.signal });
      second.abort();
      await waitFor(() => bus.health().consumers.length === 0, 'the consumers to close', t.timeoutMs);
      expect(consumer.closed).toBe(true);
    },
  },
  {
    id: 'queue: consumer.close() waits for running handlers and their acks stick',
    ...requires('queue'),
    async run(t) {
      const bus = await t.connect();
      const name = t.name('q');
      const started = gate();
      const release = gate();
      let finished = false;
      const consumer = await bus.queue(name).consume(async () => {
        started.open();
        await release.promise;
        finished = true;
      });
      await bus.queue(name).send('in flight');
      await started.promise;
      const closing = consumer.close();
      setTimeout(release.open, 50);
      await closing;
      expect(finished).toBe(true);
      await expectOnlyMarker(bus, name, t.timeoutMs);
    },
  },
  {
    id: 'queue: many messages with concurrency arrive, none lost',
    ...requires('queue'),
    async run(t) {
      const bus = await t.connect();
      const queue = bus.queue<number>(t.name('q'));
      const seen = new Set<number>();
      let deliveries = 0;
      await queue.consume(
        (m) => {
          deliveries++;
          seen.add(m.payload);
        },
        { concurrency: 8, prefetch: 64 },
      );
      await Promise.all(Array.from({ length: 500 }, (_, i) => queue.send(i)));
      await waitFor(() => seen.size === 500, `500 distinct messages (got ${seen.size})`, t.timeoutMs * 3);
      expect(deliveries).toBe(500);
    },
  },
  {
    id: 'queue: higher priority is delivered first',
    ...requires('queue', 'priority'),
    async run(t) {
      const bus = await t.connect();
      const queue = bus.queue<string>(t.name('q'), { maxPriority: 9 });
      await queue.send('low', { priority: 1 });
      await queue.send('mid', { priority: 5 });
      await queue.send('high', { priority: 9 });
      await queue.send('none');
      const got = recorder<string>();
      await queue.consume(got.handler, { prefetch: 1 });
      await got.waitFor(4, t.timeoutMs);
      expect(got.payloads()).toEqual(['high', 'mid', 'low', 'none']);
      expect(got.messages[0]!.priority).toBe(9);
    },
  },
  {
    id: 'queue: a delayed message is not delivered before its delay',
    ...requires('queue', 'delay'),
    async run(t) {
      const bus = await t.connect();
      const queue = bus.queue<string>(t.name('q'));
      const got = recorder<string>();
      await queue.consume(got.handler);
      const sentAt = Date.now();
      await queue.send('delayed', { delayMs: 500 });
      await queue.send('now');
      await got.waitFor(2, t.timeoutMs);
      expect(got.payloads()).toEqual(['now', 'delayed']);
      expect(Date.now() - sentAt).toBeGreaterThanOrEqual(450);
    },
  },
  {
    id: 'queue: headers and key travel with the message',
    ...requires('queue', 'headers'),
    async run(t) {
      const bus = await t.connect();
      const queue = bus.queue(t.name('q'));
      const got = recorder();
      await queue.consume(got.handler);
      const headers = { 'trace-id': 'abc-123', note: 'héllo: wörld, ünïcode ✓', empty: '' };
      await queue.send('h', { headers, key: 'customer-9' });
      await got.waitFor(1, t.timeoutMs);
      expect(got.messages[0]!.headers).toMatchObject(headers);
      expect(got.messages[0]!.key).toBe('customer-9');
    },
  },
  {
    id: 'queue: the bytes codec carries every byte value unchanged',
    ...requires('queue'),
    async run(t) {
      const bus = await t.connect();
      const queue = bus.queue<Uint8Array>(t.name('q'), { codec: 'bytes' });
      const got = recorder<Uint8Array>();
      await queue.consume(got.handler);
      const bytes = Uint8Array.from({ length: 512 }, (_, i) => i % 256);
      await queue.send(bytes);
      await got.waitFor(1, t.timeoutMs);
      expect(Array.from(got.messages[0]!.payload)).toEqual(Array.from(bytes));
    },
  },
  {
    id: 'queue: the text codec carries unicode text unchanged',
    ...requires('queue'),
    async run(t) {
      const bus = await t.connect();
      const queue = bus.queue<string>(t.name('q'), { codec: 'text' });
      const got = recorder<string>();
      await queue.consume(got.handler);
      const text = 'Grüße, 世界 🚀\nline two\ttab \\ backslash : colon';
      await queue.send(text);
      await got.waitFor(1, t.timeoutMs);
      expect(got.messages[0]!.payload).toBe(text);
    },
  },
  {
    id: 'queue: a 256 KiB message arrives whole',
    when: (c) => c.queue !== 'none' && (c.limits.maxMessageBytes ?? Number.POSITIVE_INFINITY) >= 300_000,
    whenText: 'maxMessageBytes is below 300000',
    async run(t) {
      const bus = await t.connect();
      const queue = bus.queue<string>(t.name('q'), { codec: 'text' });
      const got = recorder<string>();
      await queue.consume(got.handler);
      const text = 'x'.repeat(256 * 1024);
      await queue.send(text);
      await got.waitFor(1, t.timeoutMs);
      expect(got.messages[0]!.payload.length).toBe(text.length);
    },
  },
]);

/** A minimal Standard Schema, so the suite does not depend on a validation library. */
export function numberSchema() {
  return {
    '~standard': {
      version: 1 as const,
      vendor: 'omnibus-contract',
      validate: (value: unknown) =>
        typeof value === 'number'
          ? { value }
          : { issues: [{ message: `expected a number, got ${typeof value}` }] },
    },
  };
}
