/**
 * Failure paths of the adapter never end the process: every kafkajs promise and event is handled.
 * Each scenario runs with 'unhandledRejection' / 'uncaughtException' listeners that fail the test.
 * (A member that could not join in time used to reject a promise nobody awaited, issue 14.)
 */
import { randomUUID } from 'node:crypto';
import { type Adapter, type AdapterContext, ClosedError, ConnectionError, parseUrl } from '@omnibus/core';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { kafka } from '../../src/index.js';
import { kafkaClient, kafkaUrl, TEST_PARAMS, uniqueName } from '../helpers.js';

const context: AdapterContext = {
  clientId: 'failures-test',
  logger: { debug() {}, info() {}, warn() {}, error() {} },
  setState: () => undefined,
  reportError: () => undefined,
};

async function createAdapter(url: string): Promise<Adapter> {
  const parsed = parseUrl(url);
  return kafka().create({ url: parsed, options: { ...parsed.params, logLevel: 'nothing' } }, context);
}

/** A kafkajs member of `groupId` on `topic` whose handler never returns: it stops heartbeating and holds rebalances up. */
async function hungMember(topic: string, groupId: string) {
  const client = kafkaClient('hung-member');
  const consumer = client.consumer({ groupId, sessionTimeout: 30_000, rebalanceTimeout: 30_000 });
  let release: () => void = () => undefined;
  const hanging = new Promise<void>((resolve) => {
    release = resolve;
  });
  let received = false;
  await consumer.connect();
  await consumer.subscribe({ topics: [topic], fromBeginning: true });
  await consumer.run({
    eachMessage: async () => {
      received = true;
      await hanging;
    },
  });
  const producer = client.producer();
  await producer.connect();
  await producer.send({ topic, messages: [{ value: 'hold' }] });
  await producer.disconnect();
  const deadline = Date.now() + 20_000;
  while (!received && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50));
  expect(received).toBe(true);
  return {
    stop: async () => {
      release();
      await consumer.disconnect().catch(() => undefined);
    },
  };
}

/** An adapter, and a queue whose group a member that stopped heartbeating holds up. */
async function heldUpQueue(joinTimeoutMs: number) {
  const adapter = await createAdapter(kafkaUrl(`${TEST_PARAMS}&joinTimeoutMs=${joinTimeoutMs}`));
  const name = uniqueName('hang');
  // The queue's topic and group first, then the member that hangs in it.
  const first = await adapter.consume({ name }, { prefetch: 1 }, async (d) => d.ack());
  await first.close();
  return { adapter, name, hung: await hungMember(name, `omnibus.queue.${name}`) };
}

export function failureTests(): void {
  describe('kafka failure paths (no unhandled rejection, no uncaught exception)', () => {
    const escaped: unknown[] = [];
    const onEscape = (error: unknown) => void escaped.push(error);
    beforeEach(() => {
      escaped.length = 0;
      process.on('unhandledRejection', onEscape);
      process.on('uncaughtException', onEscape);
    });
    afterEach(() => {
      process.off('unhandledRejection', onEscape);
      process.off('uncaughtException', onEscape);
      expect(escaped).toEqual([]);
    });

    it('a consumer that cannot join in time (the members hang) fails consume() with a ConnectionError', async () => {
      const { adapter, name, hung } = await heldUpQueue(3000);
      try {
        const started = Date.now();
        await expect(adapter.consume({ name }, { prefetch: 1 }, async (d) => d.ack())).rejects.toThrow(
          ConnectionError,
        );
        expect(Date.now() - started).toBeLessThan(15_000);
        // What kafkajs was still doing for the member that gave up ends meanwhile, handled.
        await new Promise((resolve) => setTimeout(resolve, 5000));
      } finally {
        await hung.stop();
        await adapter.close();
      }
    }, 60_000);

    it('closing the adapter while a consumer is joining fails that consume() and nothing else', async () => {
      const { adapter, name, hung } = await heldUpQueue(20_000);
      try {
        const joining = adapter.consume({ name }, { prefetch: 1 }, async (d) => d.ack());
        const outcome = joining.then(
          () => 'joined',
          (error: unknown) => error,
        );
        await new Promise((resolve) => setTimeout(resolve, 1000));
        const started = Date.now();
        await adapter.close();
        expect(Date.now() - started).toBeLessThan(10_000);
        expect(await outcome).toBeInstanceOf(ClosedError);
        await new Promise((resolve) => setTimeout(resolve, 2000));
      } finally {
        await hung.stop();
      }
    }, 60_000);

    it('connecting to a closed port rejects with a ConnectionError', async () => {
      await expect(createAdapter('kafka://127.0.0.1:1?connectionTimeoutMs=500&retries=1')).rejects.toThrow(
        ConnectionError,
      );
      await new Promise((resolve) => setTimeout(resolve, 1000));
    }, 30_000);

    it('sending after close rejects, and the process goes on', async () => {
      const adapter = await createAdapter(kafkaUrl());
      await adapter.close();
      const message = {
        id: randomUUID(),
        body: new Uint8Array(1),
        headers: {},
        contentType: 'application/octet-stream',
        timestamp: Date.now(),
      };
      await expect(adapter.send({ name: uniqueName('closed') }, message)).rejects.toThrow();
      await new Promise((resolve) => setTimeout(resolve, 1000));
    }, 30_000);
  });
}
