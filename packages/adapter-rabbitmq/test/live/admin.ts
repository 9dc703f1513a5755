/**
 * Operations on the broker, where RabbitMQ makes them tricky: the passive declarations behind depth
 * and deletion close their channel on a missing queue, a subscriber on another connection must stop
 * a deletion, and a redrive towards a deleted subscription must keep its dead letter.
 */
import { uniqueName, waitFor } from '@omnibus/contract';
import { ValidationError } from '@omnibus/core';
import { connect as amqpConnect, type ChannelModel } from 'amqplib';
import { describe, expect, it } from 'vitest';
import { AMQP_URL, openBuses } from '../broker.js';

/** Whether `queue` exists, asked on a plain connection of its own, as another application would. */
async function exists(queue: string): Promise<boolean> {
  const model: ChannelModel = await amqpConnect(AMQP_URL);
  try {
    const channel = await model.createChannel();
    channel.on('error', () => undefined);
    return await channel.checkQueue(queue).then(
      () => true,
      (error: { code?: number }) => {
        if (error.code === 404) return false;
        throw error;
      },
    );
  } finally {
    await model.close().catch(() => undefined);
  }
}

/** Polls `read` until it gives `expected`: the broker's counts settle a moment after a delivery. */
async function until(read: () => Promise<number>, expected: number, what: string): Promise<void> {
  let last = await read();
  const dueAt = Date.now() + 10_000;
  while (last !== expected) {
    if (Date.now() > dueAt) throw new Error(`timed out waiting for ${what} (last ${last})`);
    await new Promise((resolve) => setTimeout(resolve, 20));
    last = await read();
  }
}

/** A promise and its resolver, to hold handlers until the test lets them finish. */
function gate(): { promise: Promise<void>; open: () => void } {
  let open!: () => void;
  const promise = new Promise<void>((resolve) => {
    open = resolve;
  });
  return { promise, open };
}

export function adminTests(): void {
  describe('rabbitmq operations on the broker', () => {
    const open = openBuses();

    it('depth and purge of a missing queue are 0, create nothing, and leave the connection working', async () => {
      const bus = await open();
      const working = bus.queue<string>(uniqueName('working'));
      const got: string[] = [];
      await working.consume((m) => void got.push(m.payload));
      const missing = bus.queue(uniqueName('missing'));
      expect(await missing.depth()).toBe(0);
      expect(await missing.purge()).toBe(0);
      expect(await missing.depth()).toBe(0);
      expect(await exists(missing.name)).toBe(false);
      // The 404s closed their throwaway channels only: the consumer and the publisher go on.
      await working.send('after');
      await waitFor(() => got.length === 1, 'the consumer');
      expect(got).toEqual(['after']);
      expect(bus.health().state).toBe('connected');
    });

    it('depth counts ready messages only, not those out with a consumer', async () => {
      const bus = await open();
      const queue = bus.queue<number>(uniqueName('q'));
      for (let i = 0; i < 3; i++) await queue.send(i);
      const held = gate();
      const started: number[] = [];
      await queue.consume(
        async (m) => {
          started.push(m.payload);
          await held.promise;
        },
        { prefetch: 1, concurrency: 1 },
      );
      await waitFor(() => started.length === 1, 'the first delivery');
      // One is out with the consumer, unsettled: two are ready.
      await until(() => queue.depth(), 2, 'depth 2');
      held.open();
      await waitFor(() => started.length === 3, 'the rest');
      await until(() => queue.depth(), 0, 'depth 0');
    });

    it('a durable subscription is not deleted while a subscriber on another connection is attached', async () => {
      const [bus, other] = [await open(), await open()];
      const topicName = uniqueName('t');
      const durable = uniqueName('d');
      const held = gate();
      const elsewhere = await other
        .topic<string>(topicName)
        .subscribe('#', () => held.promise, { durable, prefetch: 1 });
      const topic = bus.topic<string>(topicName);
      await topic.publish('held');
      await topic.publish('waiting');
      const error = await topic.deleteSubscription(durable).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(ValidationError);
      expect((error as Error).message).toMatch(/subscriber\(s\) attached; close them first/);
      expect(await exists(`${topicName}.${durable}`)).toBe(true);
      held.open();
      await elsewhere.close();
      expect(await topic.deleteSubscription(durable)).toBe(true);
      expect(await exists(`${topicName}.${durable}`)).toBe(false);
      expect(await topic.deleteSubscription(durable)).toBe(false);
      // Publishing goes on with nothing bound.
      await expect(topic.publish('after')).resolves.toMatchObject({ id: expect.any(String) });
    });

    it('a redrive to a durable subscription deleted meanwhile fails and keeps the dead letter', async () => {
      const bus = await open();
      const topic = bus.topic<string>(uniqueName('t'));
      const durable = uniqueName('d');
      const dead: Array<string | undefined> = [];
      bus.on('deadLetter', (event) => void dead.push(event.deadLetter));
      const subscriber = await topic.subscribe(
        '#',
        () => {
          throw new Error('no');
        },
        { durable, maxAttempts: 1 },
      );
      await topic.publish('order');
      await waitFor(() => dead.length === 1, 'the dead letter');
      await subscriber.close();
      expect(await topic.deleteSubscription(durable)).toBe(true);
      const letters = bus.deadLetters({ topic: topic.name, subscription: durable });
      const result = await letters.redrive();
      expect(result).toMatchObject({ moved: 0, failed: 1 });
      expect(result.error).toBeInstanceOf(ValidationError);
      expect(result.error?.message).toMatch(/has no durable subscription/);
      expect(await letters.count()).toBe(1);
    });
  });
}
