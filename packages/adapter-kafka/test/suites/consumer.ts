/**
 * Consumers on the real broker: commits that never pass an unfinished handler, clean close,
 * rebalances (duplicates counted, nothing lost), long handlers, crashes, and queue retries.
 * Each kafkajs pitfall in shared/PITFALLS.md that applies has a test here.
 */
import { gate, waitFor } from '@omnibus/contract';
import { HEADER, type Message, type Queue } from '@omnibus/core';
import { describe, expect, it } from 'vitest';
import {
  connectKafka,
  eventually,
  kafkaClient,
  suiteAdmin,
  TEST_PARAMS,
  uniqueName,
  withBus,
} from '../helpers.js';

/** Consumes `queue`, noting each delivery as `payload@attempt`; `fails` says which deliveries throw. */
async function attempts<T>(queue: Queue<T>, fails: (m: Message<T>) => boolean, concurrency: number) {
  const order: string[] = [];
  await queue.consume(
    (m) => {
      order.push(`${m.payload}@${m.attempt}`);
      if (fails(m)) throw new Error('fails');
    },
    { concurrency },
  );
  return order;
}

export function consumerTests(): void {
  describe('kafka consumers', () => {
    const admin = suiteAdmin();

    const committed = async (groupId: string, topic: string): Promise<number[]> => {
      const [offsets] = await admin().fetchOffsets({ groupId, topics: [topic] });
      return (offsets?.partitions ?? [])
        .sort((a, b) => a.partition - b.partition)
        .map((p) => Number(p.offset));
    };
    const high = async (topic: string): Promise<number> =>
      (await admin().fetchTopicOffsets(topic)).reduce((sum, p) => sum + Number(p.high), 0);

    it('never commits past a handler that is still running, whatever order handlers finish in', () =>
      withBus(connectKafka(), async (bus) => {
        const name = uniqueName('l');
        const log = bus.log<number>(name);
        for (let i = 0; i < 10; i++) await log.append(i);
        const release = gate();
        const done = new Set<number>();
        await log.read(
          async (m) => {
            if (m.payload === 0) await release.promise;
            done.add(m.payload);
          },
          { group: 'g', from: 'earliest', concurrency: 4 },
        );
        await waitFor(() => done.size === 9, '1..9 handled while 0 runs', 15_000);
        // Several commit intervals pass: still nothing past offset 0 may be committed.
        await new Promise((resolve) => setTimeout(resolve, 600));
        expect((await committed(`omnibus.log.${name}.g`, name))[0]).toBeLessThanOrEqual(0);
        release.open();
        await waitFor(() => done.size === 10, 'all handled', 15_000);
        await eventually(() => committed(`omnibus.log.${name}.g`, name), [10]);
      }));

    it('close() commits what was acked and leaves the group cleanly', () =>
      withBus(connectKafka({}, `${TEST_PARAMS}&commitIntervalMs=60000`), async (bus) => {
        const name = uniqueName('q');
        const queue = bus.queue<number>(name);
        const seen: number[] = [];
        const consumer = await queue.consume((m) => void seen.push(m.payload));
        for (let i = 0; i < 5; i++) await queue.send(i);
        await waitFor(() => seen.length === 5, '5 messages', 15_000);
        // commitIntervalMs is a minute: only close() can have committed them.
        await consumer.close();
        expect(await committed(`omnibus.queue.${name}`, name)).toEqual([5]);
        const { groups } = await admin().describeGroups([`omnibus.queue.${name}`]);
        expect(groups[0]).toMatchObject({ state: 'Empty', members: [] });
      }));

    it('rebalances lose nothing when members join and leave mid-stream; duplicates are counted', async () => {
      const params = `${TEST_PARAMS}&partitions=4`;
      const [a, b, producer] = [
        await connectKafka({}, params),
        await connectKafka({}, params),
        await connectKafka({}, params),
      ];
      try {
        const name = uniqueName('q');
        const deliveries = new Map<number, number>();
        let redelivered = 0;
        const handler = async (m: Message<number>) => {
          deliveries.set(m.payload, (deliveries.get(m.payload) ?? 0) + 1);
          if (m.redelivered) redelivered++;
          await new Promise((resolve) => setTimeout(resolve, 2));
        };
        const first = await a.queue<number>(name).consume(handler, { concurrency: 4 });
        const total = 600;
        let sent = 0;
        const sending = (async () => {
          while (sent < total) {
            await Promise.all(Array.from({ length: 20 }, () => producer.queue<number>(name).send(sent++)));
            await new Promise((resolve) => setTimeout(resolve, 20));
          }
        })();
        await waitFor(() => deliveries.size >= 150, '150 messages before the join', 30_000);
        await b.queue<number>(name).consume(handler, { concurrency: 4 });
        await waitFor(() => deliveries.size >= 400, '400 messages before the leave', 30_000);
        await first.close();
        await sending;
        await waitFor(
          () => deliveries.size === total,
          `all ${total} messages (got ${deliveries.size})`,
          30_000,
        );
        const duplicates = [...deliveries.values()].reduce((sum, n) => sum + n - 1, 0);
        console.info(
          `[adapter-kafka] rebalance test: ${total} messages, ${duplicates} duplicate deliveries (${redelivered} flagged redelivered)`,
        );
        expect([...deliveries.keys()].sort((x, y) => x - y)).toEqual([...Array(total).keys()]);
      } finally {
        await Promise.all([a.close(), b.close(), producer.close()]);
      }
    }, 120_000);

    for (const prefetch of [1, 10]) {
      it(`a handler longer than the session timeout keeps its membership (prefetch ${prefetch})`, () => {
        // The broker's minimum session timeout is 6 s; the first handler runs 8 s.
        return withBus(
          connectKafka({}, 'sessionTimeoutMs=6000&heartbeatIntervalMs=1000&maxWaitTimeMs=250'),
          async (bus) => {
            const name = uniqueName('q');
            const queue = bus.queue<string>(name);
            const calls: string[] = [];
            await queue.consume(
              async (m) => {
                calls.push(m.payload);
                if (m.payload === 'slow') await new Promise((resolve) => setTimeout(resolve, 8000));
              },
              { prefetch, handlerTimeoutMs: 20_000 },
            );
            await queue.send('slow');
            await queue.send('next');
            await waitFor(() => calls.includes('next'), 'the next message', 30_000);
            // An evicted member would have rejoined and got the uncommitted 'slow' again.
            await new Promise((resolve) => setTimeout(resolve, 1500));
            expect(calls).toEqual(['slow', 'next']);
            const { groups } = await admin().describeGroups([`omnibus.queue.${name}`]);
            expect(groups[0]?.state).toBe('Stable');
          },
        );
      }, 60_000);
    }

    it('an unkeyed poison message is retried by re-publishing, so the queue goes on meanwhile', () =>
      withBus(connectKafka(), async (bus) => {
        const name = uniqueName('q');
        const queue = bus.queue<string>(name, { maxAttempts: 3, retryDelayMs: 400 });
        const order = await attempts(queue, (m) => m.payload === 'poison', 1);
        const dead: string[] = [];
        await bus.queue<string>(`${name}.dlq`).consume((m) => void dead.push(m.payload));
        for (const payload of ['poison', 'a', 'b', 'c']) await queue.send(payload);
        await waitFor(() => dead.length === 1, 'the dead letter', 20_000);
        expect(order).toEqual(['poison@1', 'a@1', 'b@1', 'c@1', 'poison@2', 'poison@3']);
        // Two re-published copies; the group's commit reaches the end (no partition held up).
        expect(await high(name)).toBe(6);
        await eventually(() => committed(`omnibus.queue.${name}`, name), [6]);
      }));

    it('a keyed queue message is retried in place, before later messages of its key', () =>
      withBus(connectKafka(), async (bus) => {
        const name = uniqueName('q');
        const queue = bus.queue<number>(name);
        const order = await attempts(queue, (m) => m.payload === 1 && m.attempt === 1, 4);
        for (const n of [1, 2, 3]) await queue.send(n, { key: 'k' });
        await waitFor(() => order.length === 4, '4 deliveries', 15_000);
        expect(order).toEqual(['1@1', '1@2', '2@1', '3@1']);
        expect(await high(name)).toBe(3);
      }));

    it('a record sent without an id (or with an empty one) is known by <topic>-<partition>-<offset>; one with an id keeps it', () =>
      withBus(connectKafka(), async (bus) => {
        const name = uniqueName('q');
        const queue = bus.queue<string>(name, { codec: 'text' });
        const ids = new Map<string, string>();
        await queue.consume((m) => void ids.set(m.payload, m.id));
        const producer = kafkaClient('omnibus-test-foreign-ids').producer();
        await producer.connect();
        try {
          await producer.send({
            topic: name,
            acks: -1,
            messages: [
              { value: 'none', headers: { 'content-type': 'text/plain' } },
              { value: 'empty', headers: { 'content-type': 'text/plain', [HEADER.id]: '' } },
              { value: 'own', headers: { 'content-type': 'text/plain', [HEADER.id]: 'id-7' } },
            ],
          });
        } finally {
          await producer.disconnect();
        }
        await waitFor(() => ids.size === 3, '3 deliveries', 15_000);
        expect(Object.fromEntries(ids)).toEqual({ none: `${name}-0-0`, empty: `${name}-0-1`, own: 'id-7' });
      }));

    it('routing filters on the client and commits the records it skips', () =>
      withBus(connectKafka(), async (bus) => {
        const name = uniqueName('t');
        const topic = bus.topic<string>(name);
        const got: string[] = [];
        const subscription = await topic.subscribe('orders.*', (m) => void got.push(m.payload), {
          durable: 'billing',
        });
        for (const subject of [
          'payments.x',
          'orders.eu',
          'payments.y',
          'orders.us',
          'orders.eu.created',
          'orders.end',
        ]) {
          await topic.publish(subject, { subject });
        }
        await waitFor(() => got.length === 3, '3 matching messages', 15_000);
        await subscription.close();
        expect(got).toEqual(['orders.eu', 'orders.us', 'orders.end']);
        expect(await committed(`omnibus.topic.${name}.billing`, name)).toEqual([6]);
      }));
  });
}
