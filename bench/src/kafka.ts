/**
 * kafka:// pairs (KAFKA_BROKERS, default 127.0.0.1:9092). "Raw" is kafkajs used well: batches of
 * 500 records built by hand (acks=all), read with `eachBatch`. Omnibus sends one message per call
 * from many concurrent callers (the adapter coalesces them into batches) and reads with a
 * consumer whose offsets are committed as handlers finish. Both sides go from send to handler.
 * The "send only" pair isolates the producer: until the broker confirmed (acks=all), no consumer.
 */
import { randomBytes } from 'node:crypto';
import { kafka } from '@omnibus/adapter-kafka';
import { type Bus, connect } from '@omnibus/core';
import kafkajs from 'kafkajs';
import {
  Counter,
  counting,
  markConfirmed,
  markSent,
  payload,
  pipelined,
  type Runner,
  type Scenario,
  type Side,
} from './harness.js';

const BROKERS = (process.env.KAFKA_BROKERS ?? '127.0.0.1:9092').split(',').map((b) => b.trim());
const WINDOW = 1000;
const BATCH = 500;

const name = (kind: string) => `bench-${kind}-${randomBytes(4).toString('hex')}`;

/** kafkajs: one topic, a consumer in its own group, sends in hand-built batches of 500. */
const raw: Side = {
  async setup(): Promise<Runner> {
    const client = new kafkajs.Kafka({ brokers: BROKERS, logLevel: kafkajs.logLevel.NOTHING });
    const admin = client.admin();
    const producer = client.producer({ createPartitioner: kafkajs.Partitioners.DefaultPartitioner });
    const topic = name('raw');
    await Promise.all([admin.connect(), producer.connect()]);
    await admin.createTopics({ topics: [{ topic, numPartitions: 1 }] });
    const consumer = client.consumer({ groupId: `${topic}-group`, maxWaitTimeInMs: 100 });
    await consumer.connect();
    await consumer.subscribe({ topics: [topic], fromBeginning: true });
    const counter = new Counter();
    const joined = new Promise<void>((resolve) => consumer.on(consumer.events.GROUP_JOIN, () => resolve()));
    await consumer.run({
      eachBatch: async ({ batch }) => {
        for (const _ of batch.messages) counter.hit();
      },
    });
    await joined;
    const value = Buffer.from(payload());
    const send = (n: number) =>
      producer.send({ topic, acks: -1, messages: Array.from({ length: n }, () => ({ value })) });
    return {
      // One batch in flight: `depth` messages in flight is a batch of `depth` (500 by default).
      async throughput(count, depth = BATCH) {
        const done = counter.expect(count);
        for (let sent = 0; sent < count; sent += depth) {
          const n = Math.min(depth, count - sent);
          const first = markSent(n);
          await send(n);
          markConfirmed(first, n);
        }
        await done;
      },
      async roundTrip() {
        const done = counter.expect(1);
        await send(1);
        await done;
      },
      async close() {
        await consumer.disconnect();
        await admin.deleteTopics({ topics: [topic] }).catch(() => undefined);
        await Promise.all([producer.disconnect(), admin.disconnect()]);
      },
    };
  },
};

async function omnibus(kind: 'queue' | 'log'): Promise<Runner> {
  const bus: Bus = await connect(`kafka://${BROKERS.join(',')}?maxWaitTimeMs=100`, {
    adapters: [kafka()],
  });
  const counter = new Counter();
  const body = payload();
  const destination = name(kind);
  let send: () => Promise<unknown>;
  if (kind === 'queue') {
    const queue = bus.queue<Uint8Array>(destination, { codec: 'bytes' });
    await queue.consume(counter.hit, { concurrency: 64, prefetch: 2000 });
    send = () => queue.send(body);
  } else {
    const log = bus.log<Uint8Array>(destination, { codec: 'bytes' });
    await log.read(counter.hit, { from: 'earliest', group: 'bench', concurrency: 64, prefetch: 2000 });
    send = () => log.append(body);
  }
  return {
    ...counting(counter, WINDOW, send),
    close: () => bus.close(),
  };
}

/** Omnibus's batch API against the same raw side: `sendBatch` of 500, consumed in batches of 500. */
async function omnibusBatches(): Promise<Runner> {
  const bus: Bus = await connect(`kafka://${BROKERS.join(',')}?maxWaitTimeMs=100`, {
    adapters: [kafka()],
  });
  const counter = new Counter();
  const body = payload();
  const queue = bus.queue<Uint8Array>(name('batch'), { codec: 'bytes' });
  await queue.consume(
    (batch) => {
      for (const _ of batch) counter.hit();
    },
    { batch: { size: BATCH }, prefetch: 2000 },
  );
  const entries = Array.from({ length: BATCH }, () => ({ payload: body }));
  const send = (n: number) => queue.sendBatch(n === BATCH ? entries : entries.slice(0, n));
  return {
    async throughput(count) {
      const done = counter.expect(count);
      for (let sent = 0; sent < count; sent += BATCH) await send(Math.min(BATCH, count - sent));
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

/** kafkajs producer alone: hand-built batches of 500, each awaited (acks=all). */
const rawSend: Side = {
  async setup(): Promise<Runner> {
    const client = new kafkajs.Kafka({ brokers: BROKERS, logLevel: kafkajs.logLevel.NOTHING });
    const admin = client.admin();
    const producer = client.producer({ createPartitioner: kafkajs.Partitioners.DefaultPartitioner });
    const topic = name('raw-send');
    await Promise.all([admin.connect(), producer.connect()]);
    await admin.createTopics({ topics: [{ topic, numPartitions: 1 }] });
    const value = Buffer.from(payload());
    const send = (n: number) =>
      producer.send({ topic, acks: -1, messages: Array.from({ length: n }, () => ({ value })) });
    return {
      async throughput(count) {
        for (let sent = 0; sent < count; sent += BATCH) await send(Math.min(BATCH, count - sent));
      },
      async roundTrip() {
        await send(1);
      },
      async close() {
        await admin.deleteTopics({ topics: [topic] }).catch(() => undefined);
        await Promise.all([producer.disconnect(), admin.disconnect()]);
      },
    };
  },
};

/** Omnibus: one `send` per message from `WINDOW` concurrent callers, each resolved when confirmed. */
const omnibusSend: Side = {
  async setup(): Promise<Runner> {
    const bus = await connect(`kafka://${BROKERS.join(',')}`, { adapters: [kafka()] });
    const queue = bus.queue<Uint8Array>(name('send'), { codec: 'bytes' });
    const body = payload();
    const send = () => queue.send(body);
    await send();
    return {
      throughput: (count) => pipelined(count, WINDOW, send),
      roundTrip: async () => void (await send()),
      close: () => bus.close(),
    };
  },
};

export const kafkaScenarios: Scenario[] = [
  {
    name: 'kafka send, producer only (raw: batches of 500)',
    raw: rawSend,
    omnibus: omnibusSend,
    count: 20_000,
    roundTrips: 200,
  },
  {
    name: 'kafka send→consume (raw: batches of 500)',
    raw,
    omnibus: { setup: () => omnibus('queue') },
    count: 20_000,
    roundTrips: 200,
  },
  {
    name: 'kafka append→read (raw: batches of 500)',
    raw,
    omnibus: { setup: () => omnibus('log') },
    count: 20_000,
    roundTrips: 200,
  },
  {
    name: 'kafka sendBatch→consume in batches (both: batches of 500)',
    raw,
    omnibus: { setup: omnibusBatches },
    count: 20_000,
    roundTrips: 200,
  },
];
