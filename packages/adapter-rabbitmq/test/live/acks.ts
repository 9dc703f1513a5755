/**
 * Coalesced acks (src/acks.ts), proven through the broker: a `multiple` ack never covers a message
 * that was requeued or whose handler is still running, and acks pending when a consumer closes
 * reach the broker first. The broker's count of ready messages (`checkQueue`) says what was
 * settled: an unsettled message goes back to the queue when its channel closes. And a burst of
 * publishes leaves in one socket write, in order.
 */
import type { Writable } from 'node:stream';
import { uniqueName, waitFor } from '@omnibus/contract';
import { connect, type Message, parseUrl } from '@omnibus/core';
import { connect as amqpConnect, type Channel, type ChannelModel } from 'amqplib';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { attachConsumer, type ConsumeContext } from '../../src/consume.js';
import { rabbitmq } from '../../src/index.js';
import { resolveSettings } from '../../src/options.js';
import { Publisher } from '../../src/publisher.js';
import { Session } from '../../src/session.js';
import { AMQP_URL, openBuses } from '../broker.js';

export function ackTests(): void {
  describe('rabbitmq acks', () => {
    const open = openBuses();
    let model: ChannelModel;
    let channel: Channel;
    /** Every `basic.ack` amqplib sends, as [delivery tag, multiple]. */
    let acks: ReturnType<typeof vi.spyOn>;
    beforeAll(async () => {
      model = await amqpConnect(AMQP_URL);
      model.on('error', () => undefined);
      channel = await model.createChannel();
      // The prototype every amqplib channel (ConfirmChannel too) acks through.
      acks = vi.spyOn(
        Object.getPrototypeOf(Object.getPrototypeOf(await model.createConfirmChannel())),
        'ack',
      );
    });
    afterAll(async () => {
      acks.mockRestore();
      await model.close().catch(() => undefined);
    });

    /** Messages ready in `queue`, as the broker counts them. */
    const ready = async (queue: string) => (await channel.checkQueue(queue)).messageCount;
    const multipleAcks = () => acks.mock.calls.filter((call: unknown[]) => call[1] === true).length;

    it('a requeued message among acked ones is redelivered; the others are acked together and not redelivered', async () => {
      const bus = await open();
      const queue = bus.queue<number>(uniqueName('acks'));
      const count = 40;
      await queue.consume(() => undefined).then((c) => c.close()); // declares the queue
      for (let i = 0; i < count; i++) await queue.send(i);
      const seen = new Map<number, number>();
      const multipleBefore = multipleAcks();
      const consumer = await queue.consume(
        async (m: Message<number>) => {
          seen.set(m.payload, (seen.get(m.payload) ?? 0) + 1);
          if (m.payload === 17 && !m.redelivered) await m.requeue();
        },
        { concurrency: count, prefetch: count },
      );
      await waitFor(() => seen.size === count && seen.get(17) === 2, 'every message, and 17 twice');
      await consumer.close();
      expect(await ready(queue.name)).toBe(0);
      // Vacuous unless acks were coalesced.
      expect(multipleAcks()).toBeGreaterThan(multipleBefore);
      const again = [...seen].filter(([payload, times]) => payload !== 17 && times !== 1);
      expect(again, 'messages delivered more than once').toEqual([]);
    });

    it('a multiple ack never covers a message whose handler is still running', async () => {
      const bus = await connect(AMQP_URL, { adapters: [rabbitmq()], closeTimeoutMs: 300 });
      bus.on('error', () => undefined);
      try {
        const queue = bus.queue<number>(uniqueName('acks'));
        await queue.consume(() => undefined).then((c) => c.close());
        const count = 30;
        for (let i = 0; i < count; i++) await queue.send(i);
        let release: () => void = () => undefined;
        const gate = new Promise<void>((resolve) => {
          release = resolve;
        });
        const handled: number[] = [];
        const multipleBefore = multipleAcks();
        const consumer = await queue.consume(
          async (m: Message<number>) => {
            if (m.payload === 3) await gate;
            handled.push(m.payload);
          },
          { concurrency: count, prefetch: count },
        );
        await waitFor(() => handled.length === count - 1, 'every message but the held one');
        await waitFor(() => multipleAcks() > multipleBefore, 'a multiple ack after the held message');
        // Closing gives the unsettled message back to the queue: only 3, if no ack covered it.
        await consumer.close();
        release();
        expect(await ready(queue.name)).toBe(1);
        const got: number[] = [];
        const after = await queue.consume((m: Message<number>) => void got.push(m.payload));
        await waitFor(() => got.length === 1, 'the held message again');
        expect(got).toEqual([3]);
        await after.close();
      } finally {
        await bus.close();
      }
    });

    it('acks pending when the consumer closes reach the broker before its channel closes', async () => {
      for (let round = 0; round < 3; round++) {
        const bus = await open();
        const queue = bus.queue<number>(uniqueName('acks'));
        const count = 50;
        let closing: Promise<void> | undefined;
        let handled = 0;
        const consumer: { close(): Promise<void> } = await queue.consume(
          () => {
            // The last handler closes its consumer: the acks of this tick are still pending.
            if (++handled === count) closing = consumer.close();
          },
          { concurrency: count, prefetch: count },
        );
        await Promise.all(Array.from({ length: count }, (_, i) => queue.send(i)));
        await waitFor(() => closing !== undefined, 'every message');
        await closing;
        expect(await ready(queue.name)).toBe(0);
      }
    });

    it('acks still pending when a consumer channel is closed are sent before it closes', async () => {
      const queue = uniqueName('acks');
      await channel.assertQueue(queue, { durable: false, autoDelete: false });
      const count = 20;
      for (let i = 0; i < count; i++) channel.sendToQueue(queue, Buffer.from(String(i)));
      const tags: number[] = [];
      let settle: ((tag: number) => void) | undefined;
      const ctx = { topology: { clear() {} } } as unknown as ConsumeContext;
      const attached = await attachConsumer(ctx, model, () => undefined, {
        what: 'test',
        prefetch: count,
        prepare: async () => ({ queue }),
        onMessage: (_channel, msg, _queue, acks) => {
          acks.delivered(msg.fields.deliveryTag);
          settle ??= (tag) => acks.ack(tag);
          tags.push(msg.fields.deliveryTag);
        },
      });
      await waitFor(() => tags.length === count, 'every message');
      // Acked and closed in the same tick: the acks are still waiting for their flush.
      for (const tag of tags) settle!(tag);
      await attached.close();
      expect(await ready(queue)).toBe(0);
      await channel.deleteQueue(queue);
    });
  });

  describe('rabbitmq socket writes', () => {
    const silent = {
      clientId: 'omnibus-test',
      logger: { debug() {}, info() {}, warn() {}, error() {} },
      setState() {},
      reportError() {},
    };

    /** Publishes `count` messages at once through a session; resolves with the socket writes they took and what arrived. */
    async function burst(query: Record<string, unknown>, count: number) {
      const session = new Session(resolveSettings(parseUrl(AMQP_URL), query), silent);
      await session.open();
      const publisher = new Publisher(session, () => undefined);
      const queue = uniqueName('writes');
      await session.withChannel((ch) => ch.assertQueue(queue, { durable: false, autoDelete: false }));
      // Open the publishing channel first, so the burst is only publishes.
      await publisher.publish('', queue, Buffer.from('warm-up'), { mandatory: true });
      const socket = (session.model as unknown as { connection: { stream: Writable } }).connection.stream;
      let writes = 0;
      const write = vi.spyOn(socket, '_write').mockImplementation(function (this: Writable, ...args) {
        writes++;
        return (Object.getPrototypeOf(socket) as Writable)._write.apply(this, args);
      });
      const writev = vi.spyOn(socket, '_writev').mockImplementation(function (this: Writable, ...args) {
        writes++;
        return (Object.getPrototypeOf(socket) as { _writev: NonNullable<Writable['_writev']> })._writev.apply(
          this,
          args,
        );
      });
      await Promise.all(
        Array.from({ length: count }, (_, i) =>
          publisher.publish('', queue, Buffer.from(String(i)), { mandatory: true }),
        ),
      );
      write.mockRestore();
      writev.mockRestore();
      const arrived: string[] = [];
      await session.withChannel(async (ch) => {
        for (;;) {
          const msg = await ch.get(queue, { noAck: true });
          if (msg === false) break;
          arrived.push(msg.content.toString());
        }
        await ch.deleteQueue(queue);
      });
      publisher.close();
      await session.close();
      return { writes, arrived };
    }

    it('a burst of publishes goes out in far fewer socket writes than frames, every message in order', async () => {
      const count = 200;
      const expected = ['warm-up', ...Array.from({ length: count }, (_, i) => String(i))];
      const coalesced = await burst({}, count);
      expect(coalesced.arrived).toEqual(expected);
      const plain = await burst({ coalesceWrites: false }, count);
      expect(plain.arrived).toEqual(expected);
      // amqplib alone: about a write per publish. Coalesced: a write per pass of its pump (bounded by the
      // socket's high-water mark, ~16 KiB, so ~100 small publishes a write at most).
      expect(plain.writes).toBeGreaterThan(count / 2);
      expect(coalesced.writes).toBeLessThan(count / 4);
    });
  });
}
