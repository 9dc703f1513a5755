/**
 * The rules of docs/semantics.md that every adapter must keep the same way: a retried keyed message
 * is not overtaken, a priority is ordered or refused (never dropped), foreign messages (put on the
 * broker by its own client through the suite's `inject` hook) are handled like ours, and a dead
 * letter is a full copy of what failed.
 */
import { HEADER, type Message, textCodec, ValidationError } from '@omnibus/core';
import { expect } from 'vitest';
import {
  type ContractContext,
  deadLetters,
  defineTests,
  expectDeadLetterHeaders,
  recorder,
  rejectsWith,
  requires,
  waitFor,
  withInject,
} from '../harness.js';

interface Keyed {
  readonly key: string;
  readonly n: number;
}

const encoder = new TextEncoder();

/**
 * Sends m1, m2, m3 with key `k` (and, with `others`, messages of key `o` in between), fails m1's
 * first attempt, and checks that m2 and m3 wait for m1's success.
 */
async function keyedRetry(
  t: ContractContext,
  options: { readonly concurrency: number; readonly others: number; readonly delayMs?: number },
): Promise<void> {
  const bus = await t.connect();
  const queue = bus.queue<Keyed>(t.name('q'));
  for (let n = 1; n <= 3; n++) {
    await queue.send({ key: 'k', n }, { key: 'k' });
    for (let i = 0; i < options.others; i++) await queue.send({ key: 'o', n: n * 10 + i }, { key: 'o' });
  }
  const handled: string[] = [];
  const succeeded: number[] = [];
  const others: number[] = [];
  const overtaken: string[] = [];
  let retriedAfter = 0;
  let failedAt = 0;
  await queue.consume(
    async (m: Message<Keyed>) => {
      const { key, n } = m.payload;
      if (key !== 'k') {
        others.push(n);
        return;
      }
      handled.push(`m${n}#${m.attempt}`);
      if (n > 1 && !succeeded.includes(1)) overtaken.push(`m${n} (attempt ${m.attempt})`);
      if (n === 1 && m.attempt === 1) {
        failedAt = Date.now();
        if (options.delayMs === undefined) throw new Error('m1 fails once');
        await m.retry({ delayMs: options.delayMs, reason: 'm1 fails once' });
        return;
      }
      if (n === 1) retriedAfter = Date.now() - failedAt;
      succeeded.push(n);
    },
    { concurrency: options.concurrency, prefetch: Math.max(10, options.concurrency * 4) },
  );
  const total = options.others * 3;
  await waitFor(
    () => succeeded.length === 3 && others.length === total,
    `3 successes of key k and ${total} of key o (handled so far: ${handled.join(', ')})`,
    t.timeoutMs + (options.delayMs ?? 0),
  );
  expect(overtaken, `handled before m1 succeeded; handled: ${handled.join(', ')}`).toEqual([]);
  expect(succeeded).toEqual([1, 2, 3]);
  expect(handled).toEqual(['m1#1', 'm1#2', 'm2#1', 'm3#1']);
  if (options.delayMs !== undefined) expect(retriedAfter).toBeGreaterThanOrEqual(options.delayMs - 50);
  // Every message of key o got through beside the retry, in its own order.
  expect(others).toEqual([...others].sort((a, b) => a - b));
}

const json = (value: unknown) => encoder.encode(JSON.stringify(value));

const keyed = {
  when: (c: { queue: string; ordering: string }) => c.queue !== 'none' && c.ordering === 'key',
  whenText: 'queue is none or ordering is not key',
} as const;

export const semanticsTests = defineTests([
  {
    id: 'semantics: a retried keyed message is not overtaken by a later message of its key (concurrency 1)',
    ...keyed,
    run: (t) => keyedRetry(t, { concurrency: 1, others: 0 }),
  },
  {
    id: 'semantics: a retried keyed message is not overtaken by a later message of its key (concurrency 4, other keys beside it)',
    ...keyed,
    run: (t) => keyedRetry(t, { concurrency: 4, others: 3 }),
  },
  {
    id: 'semantics: a keyed message retried after a delay is not overtaken by a later message of its key',
    ...keyed,
    // Where the broker has no delay, a plain retry (the destination's default) is what can be asked.
    run: (t) =>
      keyedRetry(
        t,
        t.capabilities.delay === 'none'
          ? { concurrency: 4, others: 2 }
          : { concurrency: 4, others: 2, delayMs: 200 },
      ),
  },
  {
    id: 'semantics: a priority sent to a queue declared without maxPriority is refused, and nothing is sent',
    when: (c) => c.queue !== 'none' && c.priority !== 'none',
    whenText: 'queue or priority is none (using priority throws UnsupportedCapabilityError)',
    async run(t) {
      const bus = await t.connect();
      const queue = bus.queue<string>(t.name('q'));
      const got = recorder<string>();
      await queue.consume(got.handler);
      const error = await rejectsWith(
        () => queue.send('ranked', { priority: 5 }),
        ValidationError,
        'OMNIBUS_VALIDATION',
        /maxPriority/,
      );
      expect(error.message).toContain('bus.queue(name, { maxPriority })');
      await queue.send('marker');
      await got.waitFor(1, t.timeoutMs);
      expect(got.payloads()).toEqual(['marker']);
      // Above the declared maximum is refused too, whatever the broker could take.
      const declared = bus.queue<string>(t.name('q'), { maxPriority: 3 });
      await rejectsWith(
        () => declared.send('x', { priority: 4 }),
        ValidationError,
        'OMNIBUS_VALIDATION',
        /0 to 3/,
      );
    },
  },
  {
    id: 'semantics: foreign messages without an id get distinct ids that a retry keeps',
    ...requires('queue'),
    ...withInject(async (t, inject) => {
      // Two queues on two connections: an id made from a per-channel counter repeats across them.
      const first = (await t.connect()).queue<string>(t.name('q'));
      const second = (await t.connect()).queue<string>(t.name('q'));
      const got = recorder<string>((m) => {
        if (m.payload === 'a' && m.attempt === 1) throw new Error('once');
      });
      await first.consume(got.handler);
      await second.consume(got.handler);
      await inject({ kind: 'queue', name: first.name }, { body: json('a'), contentType: 'application/json' });
      await inject({ kind: 'queue', name: first.name }, { body: json('b'), contentType: 'application/json' });
      await inject(
        { kind: 'queue', name: second.name },
        { body: json('c'), contentType: 'application/json' },
      );
      await got.waitFor(4, t.timeoutMs);
      const [a1, a2] = got.messages.filter((m) => m.payload === 'a');
      const b = got.messages.find((m) => m.payload === 'b');
      const c = got.messages.find((m) => m.payload === 'c');
      expect([a1?.attempt, a2?.attempt, b?.attempt, c?.attempt]).toEqual([1, 2, 1, 1]);
      for (const m of got.messages) expect.soft(m.id, `the id of "${m.payload}"`).toMatch(/\S/);
      expect.soft(new Set([a1!.id, b!.id, c!.id]).size, `distinct ids: ${[a1!.id, b!.id, c!.id]}`).toBe(3);
      expect.soft(a2!.id, 'the id of the retried foreign message').toBe(a1!.id);
    }),
  },
  {
    id: 'semantics: the dead letter of a foreign message keeps the id it was given',
    ...requires('queue', 'deadLetter'),
    ...withInject(async (t, inject) => {
      const bus = await t.connect();
      const name = t.name('q');
      const seen: string[] = [];
      await bus.queue<string>(name).consume(async (m) => {
        seen.push(m.id);
        if (m.attempt === 1) throw new Error('once');
        await m.reject('foreign and rejected');
      });
      const dead = await deadLetters<string>(bus, `${name}.dlq`);
      await inject({ kind: 'queue', name }, { body: json('f'), contentType: 'application/json' });
      await dead.waitFor(1, t.timeoutMs);
      expect(seen).toHaveLength(2);
      expect(seen[0]).toMatch(/\S/);
      expect.soft(seen[1], 'the id on the second attempt').toBe(seen[0]);
      expect.soft(dead.messages[0]!.id, 'the id of the dead letter').toBe(seen[0]);
      expect(dead.payloads()).toEqual(['f']);
      expect(dead.messages[0]!.headers[HEADER.deadLetterReason]).toBe('foreign and rejected');
    }),
  },
  {
    id: 'semantics: a foreign body that is not JSON is dead-lettered with the reason and the consumer goes on',
    ...requires('queue', 'deadLetter'),
    ...withInject(async (t, inject) => {
      const bus = await t.connect();
      const name = t.name('q');
      const good = recorder();
      await bus.queue(name).consume(good.handler);
      const dead = await deadLetters<Uint8Array>(bus, `${name}.dlq`, { codec: 'bytes' });
      await inject(
        { kind: 'queue', name },
        { body: encoder.encode('{not json'), contentType: 'application/json' },
      );
      await dead.waitFor(1, t.timeoutMs);
      await bus.queue(name).send({ ok: true });
      await good.waitFor(1, t.timeoutMs);
      expect(good.payloads()).toEqual([{ ok: true }]);
      expect(new TextDecoder().decode(dead.messages[0]!.payload)).toBe('{not json');
      expect(dead.messages[0]!.headers[HEADER.deadLetterReason]).toMatch(/JSON/);
      expect(dead.messages[0]!.headers[HEADER.deadLetterOrigin]).toBe(name);
    }),
  },
  {
    id: 'semantics: unknown headers of a foreign message reach msg.headers',
    ...requires('queue', 'headers'),
    ...withInject(async (t, inject) => {
      const bus = await t.connect();
      const queue = bus.queue<string>(t.name('q'));
      const got = recorder<string>();
      await queue.consume(got.handler);
      await inject(
        { kind: 'queue', name: queue.name },
        { body: json('h'), headers: { 'x-foreign-trace': 'abc' }, contentType: 'application/json' },
      );
      await got.waitFor(1, t.timeoutMs);
      expect(got.payloads()).toEqual(['h']);
      expect(got.messages[0]!.headers['x-foreign-trace']).toBe('abc');
    }),
  },
  {
    id: 'semantics: a dead letter is a full copy: id, bytes, content type, key, headers, priority, and the dead-letter headers',
    ...requires('queue', 'deadLetter'),
    async run(t) {
      const bus = await t.connect();
      const name = t.name('q');
      const priority = t.capabilities.priority !== 'none';
      const headers = t.capabilities.headers !== 'none';
      const declared = priority ? { maxPriority: 5 } : {};
      const queue = bus.queue<string>(name, { codec: 'text', ...declared });
      let attempts = 0;
      // The consumer reads bytes: the copy must keep the message's content type, not the consumer's.
      await bus.queue<Uint8Array>(name, { codec: 'bytes', ...declared }).consume(async (m) => {
        attempts++;
        await m.reject('not wanted');
      });
      const dead = await deadLetters<string>(bus, `${name}.dlq`, { codec: 'text' });
      const text = 'Grüße, dead letter ✓';
      const { id } = await queue.send(text, {
        key: 'customer-7',
        ...(headers ? { headers: { tenant: 'acme', 'x-app-trace': 't-1' } } : {}),
        ...(priority ? { priority: 3 } : {}),
      });
      await dead.waitFor(1, t.timeoutMs);
      const letter = dead.messages[0]!;
      expect(attempts).toBe(1);
      expect.soft(letter.id).toBe(id);
      expect.soft(letter.payload).toBe(text);
      expect.soft(Array.from(letter.body)).toEqual(Array.from(encoder.encode(text)));
      expect.soft((letter as { contentType?: string }).contentType).toBe(textCodec.contentType);
      expect.soft(letter.key).toBe('customer-7');
      if (headers) expect.soft(letter.headers).toMatchObject({ tenant: 'acme', 'x-app-trace': 't-1' });
      if (priority) expect.soft(letter.priority).toBe(3);
      expectDeadLetterHeaders(letter, { origin: name, kind: 'queue', reason: 'not wanted', attempts: 1 });
    },
  },
  {
    id: 'semantics: the dead letter of a topic message keeps its subject',
    ...requires('topic', 'queue', 'deadLetter'),
    async run(t) {
      const bus = await t.connect();
      const topic = bus.topic<string>(t.name('t'));
      const dlq = t.name('dead');
      await topic.subscribe('orders.#', (m) => m.reject('subscriber says no'), { deadLetter: dlq });
      const dead = await deadLetters<string>(bus, dlq);
      await topic.publish('placed', { subject: 'orders.eu.created' });
      await dead.waitFor(1, t.timeoutMs);
      const letter = dead.messages[0]!;
      expect(letter.payload).toBe('placed');
      expect(letter.subject).toBe('orders.eu.created');
      expect(letter.headers[HEADER.deadLetterOrigin]).toBe(topic.name);
      expect(letter.headers[HEADER.deadLetterKind]).toBe('topic');
    },
  },
]);
