/**
 * Operations where the broker's own behaviour decides what they mean, beyond the contract suite:
 * what an ActiveMQ browser shows (messages out with a consumer too) and that it changes nothing; a
 * subscriber on another connection blocks a delete; a RabbitMQ subscription address must exist
 * before a redrive sends anything to it.
 */
import { randomBytes } from 'node:crypto';
import { recorder } from '@omnibus/contract';
import { type Adapter, type AdapterFactory, type Bus, connect, ValidationError } from '@omnibus/core';
import { afterEach, describe, expect, it } from 'vitest';
import { stomp } from '../src/index.js';
import { ACTIVEMQ_STOMP_URL, brokerOrSkip, RABBITMQ_STOMP_URL } from './brokers.js';

const name = (what: string) => `admin-${what}-${randomBytes(4).toString('hex')}`;
const open: Bus[] = [];
afterEach(async () => {
  await Promise.allSettled(open.splice(0).map((b) => b.close()));
});

/** A bus and the adapter it created, for the primitives core does not expose on their own. */
async function busWithAdapter(url: string): Promise<{ bus: Bus; adapter: Adapter }> {
  let adapter: Adapter | undefined;
  const factory = stomp();
  const capturing: AdapterFactory = {
    ...factory,
    create: async (target, context) => {
      adapter = await factory.create(target, context);
      return adapter;
    },
  };
  const bus = await connect(url, { adapters: [capturing] });
  open.push(bus);
  return { bus, adapter: adapter! };
}

const activemq = await brokerOrSkip('admin (activemq)', ACTIVEMQ_STOMP_URL);
describe.skipIf(!activemq)('stomp → activemq: browse and durable subscriptions', () => {
  it('a browser shows what the queue holds, messages out with a consumer too, and changes nothing', async () => {
    const { bus } = await busWithAdapter(ACTIVEMQ_STOMP_URL);
    const queue = bus.queue<string>(name('q'));
    for (const payload of ['a', 'b', 'c'])
      await queue.send(payload, { key: 'k', headers: { tenant: 'acme' } });
    let release: (() => void) | undefined;
    const held = new Promise<void>((resolve) => {
      release = resolve;
    });
    const got = recorder<string>((m) => (m.payload === 'a' ? held : undefined));
    const consumer = await queue.consume(got.handler, { prefetch: 1 });
    try {
      await got.waitFor(1, 10_000);
      // 'a' is with the consumer, unsettled: the browser shows it too (why depth is none).
      const letters = await bus.deadLetters(queue.name).peek(10);
      expect(letters.map((l) => l.payload)).toEqual(['a', 'b', 'c']);
      expect(letters[1]).toMatchObject({ key: 'k', headers: { tenant: 'acme' } });
      expect((await bus.deadLetters(queue.name).peek(2)).map((l) => l.payload)).toEqual(['a', 'b']);
    } finally {
      release?.();
    }
    await got.waitFor(3, 10_000);
    await consumer.close();
    expect(got.payloads()).toEqual(['a', 'b', 'c']);
    // Browsing counted no delivery: each came once, as a first delivery.
    expect(got.messages.map((m) => m.attempt)).toEqual([1, 1, 1]);
    expect(got.messages.map((m) => m.redelivered)).toEqual([false, false, false]);
    expect(await bus.deadLetters(queue.name).peek(10)).toEqual([]);
  });

  it('a durable subscription attached on another bus cannot be deleted', async () => {
    const { bus } = await busWithAdapter(ACTIVEMQ_STOMP_URL);
    const other = await busWithAdapter(ACTIVEMQ_STOMP_URL);
    const topic = name('t');
    const durable = name('d');
    const got = recorder<string>();
    const sub = await other.bus.topic<string>(topic).subscribe('#', got.handler, { durable });
    await expect(bus.topic(topic).deleteSubscription(durable)).rejects.toThrow(ValidationError);
    // Still there and still delivering.
    await bus.topic<string>(topic).publish('after');
    await got.waitFor(1, 10_000);
    await sub.close();
    expect(await bus.topic(topic).deleteSubscription(durable)).toBe(true);
  });

  it("a durable subscription's client-id is taken again at once after its connection closes", async () => {
    // ActiveMQ releases a client-id a moment after the DISCONNECT's receipt: the contract test
    // "deleting a durable subscription …" was refused once ("Client: … already connected") when it
    // subscribed again right after a delete. Each step below connects with the client-id the step
    // before it has just let go.
    const { bus } = await busWithAdapter(ACTIVEMQ_STOMP_URL);
    const topic = bus.topic<string>(name('t'));
    const durable = name('d');
    for (let i = 0; i < 40; i++) {
      const sub = await topic.subscribe('#', () => undefined, { durable });
      await sub.close();
      expect(await topic.deleteSubscription(durable)).toBe(true);
      expect(await topic.deleteSubscription(durable)).toBe(false);
    }
  });
});

const rabbitmq = await brokerOrSkip('admin (rabbitmq)', RABBITMQ_STOMP_URL);
describe.skipIf(!rabbitmq)('stomp → rabbitmq: subscription addresses', () => {
  it("a durable subscription's address exists before a copy is sent there; a missing one is refused", async () => {
    const { bus, adapter } = await busWithAdapter(RABBITMQ_STOMP_URL);
    const topic = bus.topic<string>(name('t'));
    const durable = name('d');
    await expect(adapter.subscriptionAddress({ name: topic.name }, durable)).rejects.toThrow(ValidationError);
    const got = recorder<string>();
    const sub = await topic.subscribe('#', got.handler, { durable });
    await sub.close();
    await topic.publish('kept');
    const address = await adapter.subscriptionAddress({ name: topic.name }, durable);
    expect(address).toMatch(/^\/amq\/queue\//);
    const again = await topic.subscribe('#', got.handler, { durable });
    await topic.publish('marker');
    await got.waitFor(2, 10_000);
    await again.close();
    // The probe gave back what it was handed: the message arrived once, before the marker.
    expect(got.payloads()).toEqual(['kept', 'marker']);
  });
});
