/**
 * Operations on Kafka beyond the contract suite: what they do to consumer groups and topics, seen
 * through a plain kafkajs admin.
 */
import { recorder, waitFor } from '@omnibus/contract';
import { ValidationError } from '@omnibus/core';
import { describe, expect, it } from 'vitest';
import { topicOffsets } from '../../src/topic-offsets.js';
import { connectKafka, eventually, kafkaClient, suiteAdmin, uniqueName } from '../helpers.js';

const TIMEOUT = 60_000;

export function operationsTests(): void {
  describe('kafka operations', () => {
    const admin = suiteAdmin();

    it('reads whole offsets of a topic the moment another client created it without waiting for leaders', {
      timeout: 120_000,
    }, async () => {
      // kafkajs' fetchTopicOffsets gives up at once on "not the leader" and throws a TypeError on a
      // cached topic without partitions; here most rounds hit the first. topicOffsets asks again
      // with fresh metadata until the answer covers every partition.
      const kafka = kafkaClient('omnibus-test-offsets');
      const reader = kafka.admin();
      await reader.connect();
      try {
        for (let round = 0; round < 10; round++) {
          const topic = uniqueName('unsettled');
          await admin().createTopics({ topics: [{ topic, numPartitions: 3 }], waitForLeaders: false });
          const offsets = await topicOffsets({ kafka, admin: reader, timeoutMs: 30_000 }, topic);
          expect(offsets.map((p) => [p.partition, p.low, p.high]).sort()).toEqual([
            [0, '0', '0'],
            [1, '0', '0'],
            [2, '0', '0'],
          ]);
        }
      } finally {
        await reader.disconnect();
      }
    });

    it('purges queues the moment they were first sent to, eight at a time', {
      timeout: 120_000,
    }, async () => {
      // The adapter's admin client cached each new topic before its leader was settled; kafkajs'
      // deleteTopicRecords then finds no leader in that cache, or throws a TypeError from the offsets
      // it reads itself, and gives up (4 of 8 here before the purge asked again with fresh metadata).
      for (let round = 0; round < 2; round++) {
        const bus = await connectKafka();
        try {
          const purged = await Promise.all(
            Array.from({ length: 8 }, async () => {
              const queue = bus.queue<string>(uniqueName('purge-new'));
              await queue.send('gone');
              const count = await queue.purge();
              return [count, await queue.depth()];
            }),
          );
          expect(purged).toEqual(Array.from({ length: 8 }, () => [1, 0]));
        } finally {
          await bus.close();
        }
      }
    });

    it('resets a group of a partitioned log to a time on every partition', { timeout: 120_000 }, async () => {
      const bus = await connectKafka();
      try {
        const log = bus.log<string>(uniqueName('reset'), { partitions: 3 });
        const group = uniqueName('g');
        const keys = ['a', 'b', 'c', 'd', 'e', 'f'];
        for (const key of keys) await log.append(`old-${key}`, { key });
        const sentBefore = Date.now();
        await waitFor(() => Date.now() > sentBefore, 'the next millisecond', 1000);
        const at = Date.now();
        const fresh = new Map<number, number>();
        for (const key of keys) {
          const { position } = await log.append(`new-${key}`, { key });
          fresh.set(position.partition, (fresh.get(position.partition) ?? 0) + 1);
        }
        expect(fresh.size).toBeGreaterThan(1);
        await log.resetGroup(group, { timestamp: at });
        const lag = await log.lag(group);
        expect(lag.total).toBe(keys.length);
        for (const p of lag.partitions) {
          expect(p.lag).toBe(fresh.get(p.partition) ?? 0);
          expect(p.committed).toBe(p.end - p.lag);
        }
        const got = recorder<string>();
        await log.read(got.handler, { group, from: 'earliest' });
        await got.waitFor(keys.length, TIMEOUT);
        expect(got.payloads().sort()).toEqual(keys.map((k) => `new-${k}`));
      } finally {
        await bus.close();
      }
    });

    it('refuses to reset a group or delete a subscription while a member on another connection is attached', {
      timeout: 120_000,
    }, async () => {
      const [bus, other] = await Promise.all([connectKafka(), connectKafka()]);
      try {
        const log = bus.log<string>(uniqueName('busy'));
        const group = uniqueName('g');
        await log.append('a');
        await log.append('b');
        const got = recorder<string>();
        const reader = await other.log<string>(log.name).read(got.handler, { group, from: 'earliest' });
        await got.waitFor(2, TIMEOUT);
        await eventually(async () => (await log.lag(group)).total, 0, TIMEOUT);
        await expect(log.resetGroup(group, 'earliest')).rejects.toThrow(ValidationError);
        // Nothing moved.
        expect((await log.lag(group)).partitions[0]).toMatchObject({ committed: 2, lag: 0 });

        const topic = bus.topic<string>(uniqueName('t'));
        const durable = uniqueName('d');
        const groupId = `omnibus.topic.${topic.name}.${durable}`;
        const subscriber = await other.topic<string>(topic.name).subscribe('#', () => undefined, { durable });
        await expect(topic.deleteSubscription(durable)).rejects.toThrow(ValidationError);
        expect((await admin().describeGroups([groupId])).groups[0]!.members.length).toBe(1);

        await Promise.all([reader.close(), subscriber.close()]);
        await log.resetGroup(group, 'earliest');
        expect((await log.lag(group)).partitions[0]).toMatchObject({ committed: 0, lag: 2 });
        expect(await topic.deleteSubscription(durable)).toBe(true);
        expect((await admin().describeGroups([groupId])).groups[0]!.state).toBe('Dead');
      } finally {
        await Promise.all([bus.close(), other.close()]);
      }
    });

    it("browses from where the queue's group stands, moving nothing and leaving no group behind", {
      timeout: 120_000,
    }, async () => {
      const bus = await connectKafka();
      try {
        const queue = bus.queue<string>(uniqueName('browse'));
        for (const m of ['a', 'b', 'c']) await queue.send(m);
        const first = recorder<string>();
        const consumer = await queue.consume(first.handler, { prefetch: 1, concurrency: 1 });
        await first.waitFor(1, TIMEOUT);
        await consumer.close();
        const handled = first.messages.length;
        const rest = ['a', 'b', 'c'].slice(handled);
        await eventually(() => queue.depth(), rest.length, TIMEOUT);
        const letters = bus.deadLetters(queue.name);
        const peeked = await letters.peek(10);
        expect(peeked.map((l) => l.payload)).toEqual(rest);
        expect((await letters.peek(1)).map((l) => l.payload)).toEqual(rest.slice(0, 1));
        expect(await queue.depth()).toBe(rest.length);
        const groups = (await admin().listGroups()).groups.map((g) => g.groupId);
        expect(groups.filter((g) => g.includes(`.browse.${queue.name}.`))).toEqual([]);
        // The queue's consumer gets them next, as first deliveries.
        const next = recorder<string>();
        await queue.consume(next.handler);
        await next.waitFor(rest.length, TIMEOUT);
        expect(next.payloads()).toEqual(rest);
        expect(next.messages.map((m) => [m.attempt, m.redelivered])).toEqual(rest.map(() => [1, false]));
      } finally {
        await bus.close();
      }
    });

    it('purges what the group has not consumed, counts it, and does not create unknown queues', {
      timeout: 120_000,
    }, async () => {
      const bus = await connectKafka();
      try {
        const unknown = uniqueName('never');
        expect(await bus.queue(unknown).depth()).toBe(0);
        expect(await bus.queue(unknown).purge()).toBe(0);
        expect(await bus.deadLetters(unknown).peek(1)).toEqual([]);
        expect(await admin().listTopics()).not.toContain(unknown);

        const queue = bus.queue<number>(uniqueName('purge'));
        for (let i = 0; i < 5; i++) await queue.send(i);
        const first = recorder<number>();
        const consumer = await queue.consume(first.handler, { prefetch: 1, concurrency: 1 });
        await first.waitFor(2, TIMEOUT);
        await consumer.close();
        const left = 5 - first.messages.length;
        await eventually(() => queue.depth(), left, TIMEOUT);
        expect(await queue.purge()).toBe(left);
        expect(await queue.depth()).toBe(0);
        const [offsets] = await admin().fetchTopicOffsets(queue.name);
        expect(offsets).toMatchObject({ low: '5', high: '5' });
      } finally {
        await bus.close();
      }
    });
  });
}
