/**
 * memory://: the in-memory broker driven directly (its queue and topic objects, no codec, no
 * consumption engine) against the same broker through the Omnibus API. The ratio is the cost of
 * core itself: encoding, validation, the consumption contract, promises per message.
 */
import { randomUUID } from 'node:crypto';
import { type Bus, connect, memoryBroker } from '@omnibus/core';
import { Counter, counting, payload, type Runner, type Scenario, type Side } from './harness.js';

const WINDOW = 256;
let unique = 0;

function stored(body: Uint8Array, subject?: string) {
  return {
    id: randomUUID(),
    body,
    headers: {},
    contentType: 'application/octet-stream',
    key: undefined,
    subject,
    priority: 0,
    timestamp: Date.now(),
  };
}

const rawQueue: Side = {
  async setup(): Promise<Runner> {
    const queue = memoryBroker('bench-raw').queue(`raw-${unique++}`);
    const counter = new Counter();
    const consumer = {
      credit: WINDOW,
      push: (_item: unknown, tag: number) => {
        queue.settle(tag);
        counter.hit();
      },
    };
    queue.addConsumer(consumer);
    const body = payload();
    const send = async () => queue.enqueue({ message: stored(body), attempt: 1, redelivered: false });
    return {
      ...counting(counter, WINDOW, send),
      async close() {
        queue.removeConsumer(consumer);
      },
    };
  },
};

const rawTopic: Side = {
  async setup(): Promise<Runner> {
    const broker = memoryBroker('bench-raw');
    const topic = `raw-topic-${unique++}`;
    const subscription = broker.subscribe(topic, 'orders.*.created', undefined);
    const counter = new Counter();
    const consumer = {
      credit: WINDOW,
      push: (_item: unknown, tag: number) => {
        subscription.queue.settle(tag);
        counter.hit();
      },
    };
    subscription.queue.addConsumer(consumer);
    const body = payload();
    const publish = async () => broker.publish(topic, stored(body, 'orders.eu.created'));
    return {
      ...counting(counter, WINDOW, publish),
      async close() {
        broker.unsubscribe(topic, subscription);
      },
    };
  },
};

/** Omnibus on memory://; `open` is `connect` of this build, or of another one (the channels bench). */
export async function omnibusSide(
  kind: 'queue' | 'topic',
  open: (url: string) => Promise<Bus> = connect,
): Promise<Runner> {
  const bus: Bus = await open('memory://bench-omnibus');
  const counter = new Counter();
  const body = payload();
  let send: () => Promise<unknown>;
  if (kind === 'queue') {
    const queue = bus.queue<Uint8Array>(`omnibus-${unique++}`, { codec: 'bytes' });
    await queue.consume(counter.hit, { concurrency: WINDOW, prefetch: WINDOW });
    send = () => queue.send(body);
  } else {
    const topic = bus.topic<Uint8Array>(`omnibus-topic-${unique++}`, { codec: 'bytes' });
    await topic.subscribe('orders.*.created', counter.hit, { concurrency: WINDOW, prefetch: WINDOW });
    send = () => topic.publish(body, { subject: 'orders.eu.created' });
  }
  return {
    ...counting(counter, WINDOW, send),
    close: () => bus.close(),
  };
}

/** The batch API: `sendBatch` of a window of messages, consumed in batches of the same size. */
async function omnibusBatches(): Promise<Runner> {
  const bus: Bus = await connect('memory://bench-omnibus');
  const counter = new Counter();
  const body = payload();
  const queue = bus.queue<Uint8Array>(`omnibus-batch-${unique++}`, { codec: 'bytes' });
  await queue.consume(
    (batch) => {
      for (const _ of batch) counter.hit();
    },
    { batch: { size: WINDOW }, prefetch: 2 * WINDOW },
  );
  const entries = Array.from({ length: WINDOW }, () => ({ payload: body }));
  const send = (n: number) => queue.sendBatch(n === WINDOW ? entries : entries.slice(0, n));
  return {
    async throughput(count) {
      const done = counter.expect(count);
      for (let sent = 0; sent < count; sent += WINDOW) await send(Math.min(WINDOW, count - sent));
      await done;
    },
    async roundTrip() {
      const done = counter.expect(1);
      await send(1);
      await done;
    },
    close: () => bus.close(),
  };
}

export const memoryScenarios: Scenario[] = [
  {
    name: 'memory send→consume',
    raw: rawQueue,
    omnibus: { setup: () => omnibusSide('queue') },
    count: 200_000,
    roundTrips: 2000,
    // One in flight moves ~100k msg/s here: 50k messages keep the timed round near half a second.
    minCount: 50_000,
  },
  {
    name: 'memory publish→subscribe',
    raw: rawTopic,
    omnibus: { setup: () => omnibusSide('topic') },
    count: 200_000,
    roundTrips: 2000,
    // One in flight moves ~100k msg/s here: 50k messages keep the timed round near half a second.
    minCount: 50_000,
  },
  {
    name: 'memory send→consume (batch API)',
    raw: rawQueue,
    omnibus: { setup: omnibusBatches },
    count: 200_000,
    roundTrips: 2000,
  },
];
