/**
 * What the contract suite does not see: RabbitMQ-specific promises of this adapter, each against the
 * real broker — a refused declaration stays on its throwaway channel, priority needs a declared
 * range, oversized headers fail cleanly, flow control waits for `drain`, exact attempt counts on
 * every retry path, and keyed retries keep their order.
 */
import { uniqueName, waitFor } from '@omnibus/contract';
import { ConfigError, HEADER, PublishError, parseUrl, ValidationError } from '@omnibus/core';
import type { Channel, ChannelModel, ConfirmChannel } from 'amqplib';
import { describe, expect, it } from 'vitest';
import { resolveSettings } from '../../src/options.js';
import { Publisher } from '../../src/publisher.js';
import { Session } from '../../src/session.js';
import { AMQP_URL, openBuses } from '../broker.js';

const silent = {
  clientId: 'omnibus-test',
  logger: { debug() {}, info() {}, warn() {}, error() {} },
  setState() {},
  reportError() {},
};

/** A bare session, for doing to the broker what another application would. */
async function connectRaw(): Promise<Session> {
  const session = new Session(resolveSettings(parseUrl(AMQP_URL), {}), silent);
  await session.open();
  return session;
}

export function behaviourTests(): void {
  describe('rabbitmq adapter on the broker', () => {
    const open = openBuses();

    it('a queue that exists with other arguments gives a clear error and other consumers keep going', async () => {
      const bus = await open();
      const working = uniqueName('working');
      const got: string[] = [];
      await bus.queue<string>(working).consume((m) => void got.push(m.payload));
      const plain = uniqueName('plain');
      await bus.queue(plain).send('declared without priority');
      const error = await bus
        .queue(plain, { maxPriority: 5 })
        .send('x', { priority: 1 })
        .catch((e: unknown) => e);
      expect(error).toBeInstanceOf(ConfigError);
      expect((error as Error).message).toMatch(/queue ".*-plain": it already exists with other arguments/);
      expect((error as Error).message).toMatch(/x-max-priority/);
      // The refusal closed only its throwaway channel: the consumer and the publisher still work.
      await bus.queue<string>(working).send('still here');
      await waitFor(() => got.length === 1, 'the consumer');
      expect(got).toEqual(['still here']);
      // A plain handle on a priority queue uses it as it is.
      const prioritized = uniqueName('prio');
      await bus.queue(prioritized, { maxPriority: 5 }).send('a', { priority: 2 });
      await expect(bus.queue(prioritized).send('b')).resolves.toMatchObject({ id: expect.any(String) });
    });

    it('a consumer whose queue is deleted under it comes back on a declared-again queue', async () => {
      const bus = await open();
      const queue = bus.queue<string>(uniqueName('q'));
      const got: string[] = [];
      await queue.consume((m) => void got.push(m.payload));
      await queue.send('before');
      await waitFor(() => got.length === 1, 'the first message');
      const other = await connectRaw();
      await other.withChannel((ch) => ch.deleteQueue(queue.name));
      // Sends may fail while the queue is gone (unroutable): retry until the consumer is back.
      const resend = setInterval(() => void queue.send('after').catch(() => undefined), 100);
      await waitFor(() => got.includes('after'), 'the consumer to come back', 15_000).finally(() =>
        clearInterval(resend),
      );
      expect(bus.health().state).toBe('connected');
      await other.close();
    });

    // Core refuses it for every adapter (docs/semantics.md, "Priority needs a declared queue").
    it('a priority needs a queue declared with maxPriority', async () => {
      const bus = await open();
      await expect(bus.queue(uniqueName('q')).send('x', { priority: 3 })).rejects.toThrow(ValidationError);
      await expect(bus.queue(uniqueName('q')).send('x', { priority: 3 })).rejects.toThrow(/maxPriority/);
    });

    it('quorum queues refuse priorities with a clear error', async () => {
      const bus = await open('?queueType=quorum');
      await expect(bus.queue(uniqueName('qq'), { maxPriority: 3 }).send('x')).rejects.toThrow(
        /quorum queues have no priorities/,
      );
      const q = bus.queue<string>(uniqueName('qq'));
      const got: string[] = [];
      await q.consume((m) => void got.push(m.payload));
      await q.send('on a quorum queue');
      await waitFor(() => got.length === 1, 'the quorum queue message');
    });

    it('a message that dead-letters keeps its priority, even into a queue without maxPriority', async () => {
      const bus = await open();
      const queue = uniqueName('q');
      await bus.queue(queue, { maxPriority: 9, maxAttempts: 1 }).consume(() => {
        throw new Error('fails');
      });
      const dead: (number | undefined)[] = [];
      await bus.queue(`${queue}.dlq`).consume((m) => void dead.push(m.priority));
      await bus.queue(queue, { maxPriority: 9 }).send('x', { priority: 7 });
      await waitFor(() => dead.length === 1, 'the dead letter');
      expect(dead).toEqual([7]);
    });

    it('one header over 64 KiB is refused before sending; a table over 64 KiB fails with PublishError and the connection stays up', async () => {
      const bus = await open();
      const queue = bus.queue<string>(uniqueName('q'));
      await expect(queue.send('big', { headers: { huge: 'x'.repeat(70 * 1024) } })).rejects.toThrow(
        ValidationError,
      );
      const headers = Object.fromEntries(
        Array.from({ length: 3 }, (_, i) => [`h${i}`, 'x'.repeat(30 * 1024)]),
      );
      const error = await queue.send('big', { headers }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(PublishError);
      expect((error as Error).message).toMatch(/64 KiB|table/i);
      const got: string[] = [];
      await queue.consume((m) => void got.push(m.payload));
      await queue.send('fine');
      await waitFor(() => got.length === 1, 'the next message');
      expect(bus.health().state).toBe('connected');
    });

    it('a name RabbitMQ reserves is refused before it reaches the broker', async () => {
      const bus = await open();
      await expect(bus.queue('amq.mine').send('x')).rejects.toThrow(/reserves/);
    });

    it('every failing retry path counts attempts exactly and dead-letters after maxAttempts', async () => {
      const bus = await open();
      for (const [label, retryDelayMs, key] of [
        ['immediate, republished', 0, undefined],
        ['delayed through the TTL stage', 150, undefined],
        ['keyed, retried in process', 50, 'k'],
      ] as const) {
        const queue = uniqueName('q');
        const attempts: number[] = [];
        await bus.queue(queue, { maxAttempts: 3, retryDelayMs }).consume((m) => {
          attempts.push(m.attempt);
          throw new Error(`fails (${label})`);
        });
        const dead: { headers: Record<string, string> }[] = [];
        await bus.queue(`${queue}.dlq`).consume((m) => void dead.push({ headers: { ...m.headers } }));
        const started = Date.now();
        await bus.queue(queue).send({ label }, key === undefined ? {} : { key });
        await waitFor(() => dead.length === 1, `the dead letter (${label})`);
        expect(attempts, label).toEqual([1, 2, 3]);
        expect(dead[0]!.headers[HEADER.deadLetterAttempts]).toBe('3');
        expect(Date.now() - started).toBeGreaterThanOrEqual(retryDelayMs * 2);
      }
    });

    it('a keyed message that fails is retried before later messages of its key', async () => {
      const bus = await open();
      const queue = bus.queue<number>(uniqueName('q'), { retryDelayMs: 100 });
      const seen: string[] = [];
      await queue.consume((m) => {
        seen.push(`${m.payload}@${m.attempt}`);
        if (m.payload === 1 && m.attempt === 1) throw new Error('once');
      });
      for (let i = 1; i <= 3; i++) await queue.send(i, { key: 'same' });
      await waitFor(() => seen.length === 4, 'four deliveries');
      expect(seen).toEqual(['1@1', '1@2', '2@1', '3@1']);
    });

    it('a durable subscription retries with a delay into its own queue only', async () => {
      const bus = await open();
      const topic = bus.topic<string>(uniqueName('t'));
      const failing: string[] = [];
      const other: string[] = [];
      await topic.subscribe(
        'a.*',
        (m) => {
          failing.push(`${m.payload}@${m.attempt}:${m.subject}`);
          if (m.attempt === 1) throw new Error('once');
        },
        { durable: 'billing', retryDelayMs: 100 },
      );
      await topic.subscribe('#', (m) => void other.push(m.payload), { durable: 'audit' });
      await topic.publish('e', { subject: 'a.b' });
      await waitFor(() => failing.length === 2, 'the retry');
      expect(failing).toEqual(['e@1:a.b', 'e@2:a.b']);
      expect(other).toEqual(['e']);
    });
  });

  describe('rabbitmq publisher flow control', () => {
    it('stops publishing when amqplib reports a full buffer and resumes on drain', async () => {
      const session = await connectRaw();
      const events: string[] = [];
      const spy = {
        require(): ChannelModel {
          const model = session.require();
          return {
            createConfirmChannel: async () => {
              const channel = await model.createConfirmChannel();
              channel.on('drain', () => events.push('drain'));
              const publish = channel.publish.bind(channel);
              (channel as { publish: ConfirmChannel['publish'] }).publish = (...args) => {
                events.push('publish');
                const writable = publish(...args);
                if (!writable) events.push('full');
                return writable;
              };
              return channel;
            },
          } as unknown as ChannelModel;
        },
      };
      const publisher = new Publisher(spy as unknown as Session, () => undefined);
      const queue = uniqueName('flow');
      await session.withChannel((ch: Channel) =>
        ch.assertQueue(queue, { durable: false, autoDelete: false }),
      );
      const body = Buffer.alloc(1024, 1);
      await Promise.all(
        Array.from({ length: 5000 }, () =>
          publisher.publish('', queue, body, { persistent: false, mandatory: true }),
        ),
      );
      // Vacuous unless the buffer did fill up.
      expect(events.filter((e) => e === 'full').length).toBeGreaterThan(0);
      // After every "full", nothing is published before the next drain.
      let full = false;
      for (const event of events) {
        if (event === 'full') full = true;
        else if (event === 'drain') full = false;
        else if (full) throw new Error('published into a full buffer before drain');
      }
      await session.withChannel((ch: Channel) => ch.deleteQueue(queue));
      publisher.close();
      await session.close();
    });
  });
}
