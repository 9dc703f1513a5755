import { HEADER } from '@omnibus/core';
import { expect } from 'vitest';
import { type ContractContext, deadLetters, defineTests, recorder, requires } from '../harness.js';

/**
 * Subscribes `pattern`, publishes every subject (payload = subject) and then a marker on the first
 * matching subject, and returns what the subscription got before the marker: a subscription keeps
 * publish order, so anything else it would wrongly match has arrived by then.
 */
async function expectMatches(
  t: ContractContext,
  pattern: string,
  subjects: { readonly match: readonly string[]; readonly miss: readonly string[] },
): Promise<void> {
  const bus = await t.connect();
  const topic = bus.topic<string>(t.name('t'));
  const got = recorder<string>();
  await topic.subscribe(pattern, got.handler);
  const all = [...subjects.match, ...subjects.miss].sort();
  for (const subject of all) await topic.publish(subject, { subject });
  await topic.publish('marker', { subject: subjects.match[0]! });
  await got.waitFor(subjects.match.length + 1, t.timeoutMs);
  const seen = got.payloads().filter((p) => p !== 'marker');
  expect(seen.sort()).toEqual([...subjects.match].sort());
  expect(got.messages.map((m) => m.subject).filter((s) => !subjects.match.includes(s ?? ''))).toEqual([]);
}

export const topicTests = defineTests([
  {
    id: 'topic: every subscription receives every message',
    ...requires('topic'),
    async run(t) {
      const bus = await t.connect();
      const topic = bus.topic<number>(t.name('t'));
      const a = recorder<number>();
      const b = recorder<number>();
      await topic.subscribe('#', a.handler);
      await (await t.connect()).topic<number>(topic.name).subscribe('#', b.handler);
      for (let i = 0; i < 5; i++) await topic.publish(i, { subject: 'event' });
      await a.waitFor(5, t.timeoutMs);
      await b.waitFor(5, t.timeoutMs);
      expect(a.payloads()).toEqual([0, 1, 2, 3, 4]);
      expect(b.payloads()).toEqual([0, 1, 2, 3, 4]);
    },
  },
  {
    id: 'topic: a subscription does not receive what was published before it existed',
    ...requires('topic'),
    async run(t) {
      const bus = await t.connect();
      const topic = bus.topic<string>(t.name('t'));
      await topic.publish('before', { subject: 'e' });
      const got = recorder<string>();
      await topic.subscribe('#', got.handler);
      await topic.publish('after', { subject: 'e' });
      await got.waitFor(1, t.timeoutMs);
      expect(got.payloads()).toEqual(['after']);
    },
  },
  {
    id: 'topic: an exact pattern matches only its subject',
    ...requires('topic'),
    async run(t) {
      await expectMatches(t, 'orders.eu.created', {
        match: ['orders.eu.created'],
        miss: ['orders.eu', 'orders.eu.created.x', 'orders.us.created'],
      });
    },
  },
  {
    id: 'topic: * matches exactly one word',
    ...requires('topic', 'routing'),
    async run(t) {
      await expectMatches(t, 'orders.*.created', {
        match: ['orders.eu.created', 'orders.us.created'],
        miss: ['orders.created', 'orders.eu.de.created', 'orders.eu.deleted'],
      });
    },
  },
  {
    id: 'topic: # at the end matches zero or more words',
    ...requires('topic', 'routing'),
    async run(t) {
      await expectMatches(t, 'orders.#', {
        match: ['orders', 'orders.eu', 'orders.eu.created'],
        miss: ['payments.eu', 'order', 'ordersx.eu'],
      });
    },
  },
  {
    id: 'topic: # in the middle matches zero or more words',
    ...requires('topic', 'routing'),
    async run(t) {
      await expectMatches(t, 'orders.#.created', {
        match: ['orders.created', 'orders.eu.created', 'orders.eu.de.created'],
        miss: ['orders.eu.deleted', 'payments.eu.created', 'orders.eu.created.x'],
      });
    },
  },
  {
    id: 'topic: * and # combine',
    ...requires('topic', 'routing'),
    async run(t) {
      await expectMatches(t, '*.eu.#', {
        match: ['orders.eu', 'orders.eu.created', 'payments.eu.x.y'],
        miss: ['eu.orders', 'orders.us', 'eu'],
      });
    },
  },
  {
    id: 'topic: a message without a subject is matched by # only',
    ...requires('topic', 'routing'),
    async run(t) {
      const bus = await t.connect();
      const topic = bus.topic<string>(t.name('t'));
      const all = recorder<string>();
      const some = recorder<string>();
      await topic.subscribe('#', all.handler);
      await topic.subscribe('*', some.handler);
      await topic.publish('bare');
      await topic.publish('worded', { subject: 'word' });
      await all.waitFor(2, t.timeoutMs);
      await some.waitFor(1, t.timeoutMs);
      expect(all.payloads()).toEqual(['bare', 'worded']);
      expect(some.payloads()).toEqual(['worded']);
      expect(all.messages[0]!.subject).toBeUndefined();
      expect(all.messages[1]!.subject).toBe('word');
    },
  },
  {
    id: 'topic: a durable subscription receives what was published while it was away',
    ...requires('topic', 'durableSubscriptions'),
    async run(t) {
      const name = t.name('t');
      const durable = t.name('sub');
      const first = await t.connect();
      const a = recorder<string>();
      const subscription = await first.topic<string>(name).subscribe('#', a.handler, { durable });
      await first.topic<string>(name).publish('while here', { subject: 's' });
      await a.waitFor(1, t.timeoutMs);
      await subscription.close();
      await first.close();
      const publisher = await t.connect();
      await publisher.topic<string>(name).publish('while away', { subject: 's' });
      const second = await t.connect();
      const b = recorder<string>();
      await second.topic<string>(name).subscribe('#', b.handler, { durable });
      await b.waitFor(1, t.timeoutMs);
      expect(b.payloads()).toEqual(['while away']);
    },
  },
  {
    id: 'topic: a plain subscription does not keep messages published while it was away',
    ...requires('topic'),
    async run(t) {
      const name = t.name('t');
      const bus = await t.connect();
      const a = recorder<string>();
      const subscription = await bus.topic<string>(name).subscribe('#', a.handler);
      await subscription.close();
      await bus.topic<string>(name).publish('lost to it', { subject: 's' });
      const b = recorder<string>();
      await bus.topic<string>(name).subscribe('#', b.handler);
      await bus.topic<string>(name).publish('marker', { subject: 's' });
      await b.waitFor(1, t.timeoutMs);
      expect(b.payloads()).toEqual(['marker']);
      expect(a.payloads()).toEqual([]);
    },
  },
  {
    id: 'topic: two durable subscriptions each get their own copy',
    ...requires('topic', 'durableSubscriptions'),
    async run(t) {
      const bus = await t.connect();
      const topic = bus.topic<string>(t.name('t'));
      const a = recorder<string>();
      const b = recorder<string>();
      await topic.subscribe('#', a.handler, { durable: t.name('a') });
      await topic.subscribe('#', b.handler, { durable: t.name('b') });
      await topic.publish('x', { subject: 's' });
      await a.waitFor(1, t.timeoutMs);
      await b.waitFor(1, t.timeoutMs);
      expect([a.payloads(), b.payloads()]).toEqual([['x'], ['x']]);
    },
  },
  {
    id: 'topic: a retry goes to the failing subscription only',
    ...requires('topic'),
    async run(t) {
      const bus = await t.connect();
      const topic = bus.topic<string>(t.name('t'));
      const failing = recorder<string>((m) => {
        if (m.attempt === 1) throw new Error('once');
      });
      const healthy = recorder<string>();
      await topic.subscribe('#', failing.handler);
      await topic.subscribe('#', healthy.handler);
      await topic.publish('m', { subject: 's' });
      await failing.waitFor(2, t.timeoutMs);
      await topic.publish('marker', { subject: 's' });
      await healthy.waitFor(2, t.timeoutMs);
      expect(healthy.payloads()).toEqual(['m', 'marker']);
      expect(failing.messages[1]!.attempt).toBe(2);
    },
  },
  {
    id: 'topic: a subscription dead-letters after maxAttempts',
    ...requires('topic', 'deadLetter', 'queue'),
    async run(t) {
      const bus = await t.connect();
      const topic = bus.topic<string>(t.name('t'));
      const dlq = t.name('dead');
      let calls = 0;
      await topic.subscribe(
        '#',
        () => {
          calls++;
          throw new Error('subscriber broken');
        },
        { maxAttempts: 2, deadLetter: dlq },
      );
      const dead = await deadLetters<string>(bus, dlq);
      await topic.publish('doomed', { subject: 'a.b' });
      await dead.waitFor(1, t.timeoutMs);
      expect(calls).toBe(2);
      expect(dead.payloads()).toEqual(['doomed']);
      expect(dead.messages[0]!.headers[HEADER.deadLetterOrigin]).toBe(topic.name);
      expect(dead.messages[0]!.headers[HEADER.deadLetterKind]).toBe('topic');
    },
  },
  {
    id: 'topic: messages() iterates a subscription',
    ...requires('topic'),
    async run(t) {
      const bus = await t.connect();
      const topic = bus.topic<number>(t.name('t'));
      const iterator = topic.messages('#');
      const first = iterator.next();
      // The subscription exists once next() has started it; publish until it sees one.
      let published = 0;
      const pump = setInterval(
        () => void topic.publish(published++, { subject: 'n' }).catch(() => undefined),
        50,
      );
      try {
        const result = await first;
        expect(result.done).toBe(false);
        expect(typeof result.value?.payload).toBe('number');
      } finally {
        clearInterval(pump);
        await iterator.return?.();
      }
    },
  },
  {
    id: 'topic: headers and key travel with a published message',
    ...requires('topic', 'headers'),
    async run(t) {
      const bus = await t.connect();
      const topic = bus.topic(t.name('t'));
      const got = recorder();
      await topic.subscribe('#', got.handler);
      await topic.publish({ a: 1 }, { subject: 'x.y', headers: { source: 'contract' }, key: 'k1' });
      await got.waitFor(1, t.timeoutMs);
      expect(got.messages[0]!.headers.source).toBe('contract');
      expect(got.messages[0]!.key).toBe('k1');
      expect(got.messages[0]!.subject).toBe('x.y');
    },
  },
  {
    id: 'topic: publishing to a topic nobody subscribes to resolves',
    ...requires('topic'),
    async run(t) {
      const bus = await t.connect();
      const result = await bus.topic(t.name('t')).publish('into the void', { subject: 'nobody' });
      expect(result.id).toBeTypeOf('string');
    },
  },
]);
