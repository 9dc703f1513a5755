/** Producer batching on the real broker: concurrent sends share requests, each gets its own position. */
import { waitFor } from '@omnibus/contract';
import { type LogPosition, PublishError } from '@omnibus/core';
import { describe, expect, it } from 'vitest';
import { adapterOf, connectKafka, suiteAdmin, TEST_PARAMS, uniqueName, withBus } from '../helpers.js';

export function batchingTests(): void {
  describe('kafka producer batching', () => {
    const admin = suiteAdmin();

    it('fills batches from callers that send again as soon as their send resolves', () =>
      withBus(connectKafka(), async (bus) => {
        const queue = bus.queue<number>(uniqueName('lanes'));
        await queue.send(-1);
        const before = adapterOf(bus).produceRequests;
        // 1000 callers, each sending its next message when the last one is confirmed (the bench's
        // shape): what they send while a request is in flight leaves together when it returns.
        const count = 3000;
        let next = 0;
        await Promise.all(
          Array.from({ length: 1000 }, async () => {
            while (next < count) await queue.send(next++);
          }),
        );
        const requests = adapterOf(bus).produceRequests - before;
        // 500 a request at most: 6 when every batch is full; a flush per tick or per message is far more.
        expect(requests).toBeGreaterThanOrEqual(6);
        expect(requests).toBeLessThanOrEqual(10);
        // Each resolved send is on the broker, counted by a plain kafkajs admin.
        const offsets = await admin().fetchTopicOffsets(queue.name);
        expect(offsets.reduce((sum, p) => sum + Number(p.high), 0)).toBe(count + 1);
      }));

    it('coalesces concurrent appends into few requests, resolving each with its own position', () =>
      withBus(connectKafka(), async (bus) => {
        const log = bus.log<number>(uniqueName('batch'), { partitions: 3 });
        await log.append(-1);
        const before = adapterOf(bus).produceRequests;
        const results = await Promise.all(
          Array.from({ length: 1000 }, (_, i) => log.append(i, { key: `k${i % 7}` })),
        );
        const requests = adapterOf(bus).produceRequests - before;
        // 1000 messages, 500 per request at most: a handful of requests, not 1000.
        expect(requests).toBeLessThanOrEqual(6);
        const seen = new Set(results.map((r) => `${r.position.partition}:${r.position.offset}`));
        expect(seen.size).toBe(1000);

        // Every promised position holds the message that was sent: read them all back.
        const byPosition = new Map<string, number>();
        await log.read((m) => void byPosition.set(key(m.position!), m.payload as number), {
          from: 'earliest',
        });
        await waitFor(() => byPosition.size === 1001, 'every append read back', 20_000);
        results.forEach((r, i) => {
          expect(byPosition.get(key(r.position))).toBe(i);
        });
      }));

    it('sendBatch and appendBatch hand the producer whole batches: a handful of requests for 1000 messages', () =>
      withBus(connectKafka(), async (bus) => {
        const log = bus.log<number>(uniqueName('batch-api'), { partitions: 3 });
        const queue = bus.queue<number>(uniqueName('batch-api'));
        await log.append(-1);
        await queue.send(-1);
        let before = adapterOf(bus).produceRequests;
        const appended = await log.appendBatch(
          Array.from({ length: 1000 }, (_, i) => ({ payload: i, key: `k${i % 7}` })),
        );
        expect(adapterOf(bus).produceRequests - before).toBeLessThanOrEqual(6);
        const positions = appended.map((r) => {
          if (!r.ok) throw r.error;
          return key(r.position);
        });
        expect(new Set(positions).size).toBe(1000);
        before = adapterOf(bus).produceRequests;
        const sent = await queue.sendBatch(Array.from({ length: 1000 }, (_, i) => ({ payload: i })));
        expect(sent.every((r) => r.ok)).toBe(true);
        expect(adapterOf(bus).produceRequests - before).toBeLessThanOrEqual(6);
      }));

    it('keeps a key in one partition and in send order within a batch', () =>
      withBus(connectKafka(), async (bus) => {
        const log = bus.log<number>(uniqueName('order'), { partitions: 4 });
        const results = await Promise.all(
          Array.from({ length: 200 }, (_, i) => log.append(i, { key: 'same' })),
        );
        expect(new Set(results.map((r) => r.position.partition)).size).toBe(1);
        const offsets = results.map((r) => r.position.offset);
        expect(offsets).toEqual([...offsets].sort((a, b) => a - b));
      }));

    it('splits batches by size, so a burst of large messages stays under the broker limit', () =>
      withBus(connectKafka(), async (bus) => {
        const queue = bus.queue<string>(uniqueName('big'), { codec: 'text' });
        await queue.send('warm-up');
        const before = adapterOf(bus).produceRequests;
        // 40 × 100 KB = 4 MB, far over message.max.bytes (1 MiB) for one record batch.
        await Promise.all(Array.from({ length: 40 }, (_, i) => queue.send(`${i}`.padEnd(100_000, 'x'))));
        expect(adapterOf(bus).produceRequests - before).toBeGreaterThanOrEqual(4);
      }));

    it('sends a batch the broker refuses as too large again record by record: only the oversize one fails', () => {
      // The adapter's limits raised over the broker's message.max.bytes (1 MiB), so the broker refuses.
      return withBus(
        connectKafka({}, `${TEST_PARAMS}&maxMessageBytes=3000000&batchMaxBytes=4000000`),
        async (bus) => {
          const queue = bus.queue<string>(uniqueName('oversize'), { codec: 'text' });
          await queue.send('warm-up');
          // Sent in one tick with nothing in flight: one batch of four, 1.5 MB in all.
          const outcomes = await Promise.allSettled(
            ['a', 'b', 'x'.repeat(1_500_000), 'c'].map((payload) => queue.send(payload)),
          );
          expect(outcomes.map((o) => o.status)).toEqual(['fulfilled', 'fulfilled', 'rejected', 'fulfilled']);
          const error = (outcomes[2] as PromiseRejectedResult).reason as Error;
          expect(error).toBeInstanceOf(PublishError);
          // Sent again alone: the refusal names one message.
          expect(error.message).toMatch(/sending 1 message\(s\).*larger than the max message size/);
          const got: string[] = [];
          await queue.consume((m) => void got.push(m.payload));
          await waitFor(() => got.length === 4, 'the four records that fit', 15_000);
          expect(got).toEqual(['warm-up', 'a', 'b', 'c']);
        },
      );
    });

    it('sendBatch to a new topic creates it, and a record the broker refuses fails its entry alone, by index', () =>
      withBus(
        connectKafka({}, `${TEST_PARAMS}&maxMessageBytes=3000000&batchMaxBytes=4000000`),
        async (bus) => {
          // No send before: the batch's first call creates the topic.
          const queue = bus.queue<string>(uniqueName('batch-oversize'), { codec: 'text' });
          const results = await queue.sendBatch(
            ['a', 'b', 'x'.repeat(1_500_000), 'c'].map((payload) => ({ payload })),
          );
          expect(results.map((r) => r.ok)).toEqual([true, true, false, true]);
          const refused = results[2]!;
          if (refused.ok) throw new Error('expected a failure');
          expect(refused.index).toBe(2);
          expect(refused.error).toBeInstanceOf(PublishError);
          expect(refused.error.message).toMatch(/sending 1 message\(s\).*larger than the max message size/);
          const got: { payload: string; id: string }[] = [];
          await queue.consume((m) => void got.push({ payload: m.payload, id: m.id }));
          await waitFor(() => got.length === 3, 'the three records that fit', 15_000);
          expect(got.map((m) => m.payload)).toEqual(['a', 'b', 'c']);
          // Each result's id is the id its message arrives with.
          expect(got.map((m) => m.id)).toEqual([0, 1, 3].map((i) => (results[i]!.ok ? results[i]!.id : '')));
        },
      ));

    it('a sequential sender still gets every message confirmed, one request each', () =>
      withBus(connectKafka(), async (bus) => {
        const queue = bus.queue<number>(uniqueName('seq'));
        await queue.send(0);
        const before = adapterOf(bus).produceRequests;
        for (let i = 1; i <= 20; i++) await queue.send(i);
        expect(adapterOf(bus).produceRequests - before).toBe(20);
      }));
  });

  function key(p: LogPosition): string {
    return `${p.partition}:${p.offset}`;
  }
}
