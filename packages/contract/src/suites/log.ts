import { type Capabilities, delay, HEADER, type LogPosition } from '@omnibus/core';
import { expect } from 'vitest';
import { deadLetters, defineTests, gate, recorder, requires, waitFor } from '../harness.js';

const keyOrdered = {
  when: (c: Capabilities) => c.log !== 'none' && c.ordering === 'key' && c.replay !== 'none',
  whenText: "ordering is not 'key'",
} as const;

export const logTests = defineTests([
  {
    id: 'log: append returns increasing positions for one key',
    ...requires('log'),
    async run(t) {
      const bus = await t.connect();
      const log = bus.log(t.name('l'), { partitions: 3 });
      const positions: LogPosition[] = [];
      for (let i = 0; i < 5; i++) positions.push((await log.append(i, { key: 'same' })).position);
      expect(new Set(positions.map((p) => p.partition)).size).toBe(1);
      for (let i = 1; i < positions.length; i++) {
        expect(positions[i]!.offset).toBeGreaterThan(positions[i - 1]!.offset);
      }
    },
  },
  {
    id: 'log: append with position: false resolves with the id only, and the entry is there',
    ...requires('log', 'replay'),
    async run(t) {
      const bus = await t.connect();
      const log = bus.log<string>(t.name('l'));
      const first = await log.append('a');
      const second = await log.append('b', { position: false });
      // One shape on every broker, even where the position comes for free.
      expect(second).toEqual({ id: expect.any(String) });
      const got = recorder<string>();
      await log.read(got.handler, { from: { position: first.position } });
      await got.waitFor(2, t.timeoutMs);
      expect(got.payloads()).toEqual(['a', 'b']);
      expect(got.messages[1]!.id).toBe(second.id);
    },
  },
  {
    id: "log: a reader from 'earliest' gets every retained message in order",
    ...requires('log', 'replay'),
    async run(t) {
      const bus = await t.connect();
      const log = bus.log<number>(t.name('l'));
      const positions: LogPosition[] = [];
      for (let i = 0; i < 10; i++) positions.push((await log.append(i)).position);
      const got = recorder<number>();
      await log.read(got.handler, { from: 'earliest' });
      await got.waitFor(10, t.timeoutMs);
      expect(got.payloads()).toEqual([...Array(10).keys()]);
      expect(got.messages.map((m) => m.position)).toEqual(positions);
    },
  },
  {
    id: "log: a reader from 'latest' gets only what is appended after it started",
    ...requires('log'),
    async run(t) {
      const bus = await t.connect();
      const log = bus.log<string>(t.name('l'));
      await log.append('old');
      const got = recorder<string>();
      await log.read(got.handler, { from: 'latest' });
      await log.append('new');
      await got.waitFor(1, t.timeoutMs);
      expect(got.payloads()).toEqual(['new']);
    },
  },
  {
    id: 'log: a reader from a position starts at that message',
    ...requires('log', 'replay'),
    async run(t) {
      const bus = await t.connect();
      const log = bus.log<number>(t.name('l'));
      const positions: LogPosition[] = [];
      for (let i = 0; i < 6; i++) positions.push((await log.append(i)).position);
      const got = recorder<number>();
      await log.read(got.handler, { from: { position: positions[3]! } });
      await got.waitFor(3, t.timeoutMs);
      expect(got.payloads()).toEqual([3, 4, 5]);
    },
  },
  {
    id: 'log: a reader from a timestamp starts at the first message at or after it',
    ...requires('log', 'replay'),
    async run(t) {
      const bus = await t.connect();
      const log = bus.log<string>(t.name('l'));
      await log.append('before-1');
      await log.append('before-2');
      const last = Date.now();
      // Timestamps have millisecond resolution: let the clock move past the earlier appends.
      await waitFor(() => Date.now() > last + 5, 'the clock to move on');
      const from = Date.now();
      await log.append('after-1');
      await log.append('after-2');
      const got = recorder<string>();
      await log.read(got.handler, { from: { timestamp: new Date(from) } });
      await got.waitFor(2, t.timeoutMs);
      expect(got.payloads()).toEqual(['after-1', 'after-2']);
      expect(got.messages[0]!.timestamp.getTime()).toBeGreaterThanOrEqual(from - 1);
    },
  },
  {
    id: 'log: reading does not remove messages',
    ...requires('log', 'replay'),
    async run(t) {
      const bus = await t.connect();
      const log = bus.log<number>(t.name('l'));
      for (let i = 0; i < 3; i++) await log.append(i);
      const first = recorder<number>();
      await log.read(first.handler, { from: 'earliest' });
      await first.waitFor(3, t.timeoutMs);
      const second = recorder<number>();
      await (await t.connect()).log<number>(log.name).read(second.handler, { from: 'earliest' });
      await second.waitFor(3, t.timeoutMs);
      expect(second.payloads()).toEqual([0, 1, 2]);
    },
  },
  {
    id: 'log: a group resumes after its last committed message',
    ...requires('log', 'consumerGroups', 'replay'),
    async run(t) {
      const name = t.name('l');
      const group = t.name('g');
      const bus = await t.connect();
      const log = bus.log<number>(name);
      for (let i = 0; i < 5; i++) await log.append(i);
      const first = recorder<number>();
      const reader = await log.read(first.handler, { group, from: 'earliest' });
      await first.waitFor(5, t.timeoutMs);
      await reader.close();
      for (let i = 5; i < 8; i++) await log.append(i);
      const second = recorder<number>();
      await (await t.connect()).log<number>(name).read(second.handler, { group, from: 'earliest' });
      await second.waitFor(3, t.timeoutMs);
      expect(second.payloads()).toEqual([5, 6, 7]);
    },
  },
  {
    id: 'log: different groups each see every message',
    ...requires('log', 'consumerGroups', 'replay'),
    async run(t) {
      const bus = await t.connect();
      const log = bus.log<number>(t.name('l'));
      for (let i = 0; i < 4; i++) await log.append(i);
      const a = recorder<number>();
      const b = recorder<number>();
      await log.read(a.handler, { group: t.name('ga'), from: 'earliest' });
      await log.read(b.handler, { group: t.name('gb'), from: 'earliest' });
      await a.waitFor(4, t.timeoutMs);
      await b.waitFor(4, t.timeoutMs);
      expect(a.payloads()).toEqual([0, 1, 2, 3]);
      expect(b.payloads()).toEqual([0, 1, 2, 3]);
    },
  },
  {
    id: 'log: readers in one group share the partitions and together see every message',
    ...requires('log', 'consumerGroups', 'replay'),
    async run(t) {
      const name = t.name('l');
      const group = t.name('g');
      const bus = await t.connect();
      const log = bus.log<number>(name, { partitions: 4 });
      const seen: number[] = [];
      const by = new Map<string, number>();
      const handler = (who: string) => (m: { payload: number }) => {
        seen.push(m.payload);
        by.set(who, (by.get(who) ?? 0) + 1);
      };
      await log.read(handler('a'), { group, from: 'earliest' });
      await (await t.connect())
        .log<number>(name, { partitions: 4 })
        .read(handler('b'), { group, from: 'earliest' });
      for (let i = 0; i < 40; i++) await log.append(i, { key: `k${i}` });
      await waitFor(
        () => new Set(seen).size === 40,
        `40 distinct messages (got ${new Set(seen).size})`,
        t.timeoutMs * 2,
      );
      // At-least-once: a rebalance may redeliver, but nothing is missing.
      expect([...new Set(seen)].sort((x, y) => x - y)).toEqual([...Array(40).keys()]);
    },
  },
  {
    id: 'log: messages with the same key keep their order under concurrency',
    ...keyOrdered,
    async run(t) {
      const bus = await t.connect();
      const log = bus.log<{ key: string; n: number }>(t.name('l'), { partitions: 3 });
      const keys = ['a', 'b', 'c', 'd', 'e'];
      await Promise.all(
        keys.map(async (key) => {
          for (let n = 0; n < 20; n++) await log.append({ key, n }, { key });
        }),
      );
      const order = new Map<string, number[]>();
      const got = recorder<{ key: string; n: number }>(async (m) => {
        await delay(Math.random() * 2);
        order.set(m.payload.key, [...(order.get(m.payload.key) ?? []), m.payload.n]);
      });
      await log.read(got.handler, { from: 'earliest', concurrency: 4 });
      const handled = () => [...order.values()].reduce((sum, list) => sum + list.length, 0);
      await waitFor(() => handled() === 100, '100 handled messages', t.timeoutMs);
      for (const key of keys) expect(order.get(key)).toEqual([...Array(20).keys()]);
    },
  },
  {
    id: 'log: a failed message is retried in place, before later messages of its key',
    ...keyOrdered,
    async run(t) {
      const bus = await t.connect();
      const log = bus.log<number>(t.name('l'));
      for (let i = 0; i < 4; i++) await log.append(i, { key: 'k' });
      const got = recorder<number>((m) => {
        if (m.payload === 1 && m.attempt === 1) throw new Error('retry me');
      });
      await log.read(got.handler, { from: 'earliest', concurrency: 4 });
      await got.waitFor(5, t.timeoutMs);
      expect(got.messages.map((m) => `${m.payload}@${m.attempt}`)).toEqual([
        '0@1',
        '1@1',
        '1@2',
        '2@1',
        '3@1',
      ]);
    },
  },
  {
    id: 'log: a message that keeps failing is dead-lettered and reading goes on',
    ...requires('log', 'deadLetter', 'queue', 'replay'),
    async run(t) {
      const bus = await t.connect();
      const log = bus.log<string>(t.name('l'), { maxAttempts: 2 });
      await log.append('poison');
      await log.append('fine');
      const handled: string[] = [];
      await log.read(
        (m) => {
          if (m.payload === 'poison') throw new Error('cannot handle');
          handled.push(m.payload);
        },
        { from: 'earliest' },
      );
      const dead = await deadLetters<string>(bus, `${log.name}.dlq`);
      await dead.waitFor(1, t.timeoutMs);
      await waitFor(() => handled.length === 1, 'the next message', t.timeoutMs);
      expect(handled).toEqual(['fine']);
      expect(dead.messages[0]!.headers[HEADER.deadLetterKind]).toBe('log');
      expect(dead.messages[0]!.headers[HEADER.deadLetterAttempts]).toBe('2');
    },
  },
  {
    id: 'log: messages() iterates from a position',
    ...requires('log', 'replay'),
    async run(t) {
      const bus = await t.connect();
      const log = bus.log<number>(t.name('l'));
      for (let i = 0; i < 3; i++) await log.append(i);
      const seen: number[] = [];
      for await (const m of log.messages({ from: 'earliest' })) {
        seen.push(m.payload);
        if (seen.length === 3) break;
      }
      expect(seen).toEqual([0, 1, 2]);
    },
  },
  {
    id: 'log: a group does not commit past a message whose handler has not finished',
    ...requires('log', 'consumerGroups', 'replay'),
    async run(t) {
      const name = t.name('l');
      const group = t.name('g');
      const bus = await t.connect({ closeTimeoutMs: 300 });
      const log = bus.log<string>(name);
      await log.append('slow', { key: 'a' });
      await log.append('fast', { key: 'b' });
      const fastDone = gate();
      const reader = await log.read(
        async (m) => {
          if (m.payload === 'slow') await new Promise(() => {});
          fastDone.open();
        },
        { group, from: 'earliest', concurrency: 2 },
      );
      await fastDone.promise;
      await reader.close();
      const again = recorder<string>();
      await (await t.connect()).log<string>(name).read(again.handler, { group, from: 'earliest' });
      await again.waitFor(1, t.timeoutMs);
      expect(again.payloads()[0]).toBe('slow');
    },
  },
]);
