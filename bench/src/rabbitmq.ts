/**
 * amqp://: raw amqplib against Omnibus on the same RabbitMQ, 1 KiB messages, both sides durable and
 * persistent with publisher confirms and the same message properties (what Omnibus always does),
 * the same prefetch and window.
 * - send→consume: a durable queue; the raw consumer acks in its callback.
 * - publish→subscribe: a topic exchange, subject `orders.eu.created`, pattern `orders.*.created`.
 * - log append: a stream; raw resolves on the confirm, Omnibus also reads the offset back.
 * - log append without position: Omnibus with `{ position: false }`, resolving on the confirm as raw does.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { rabbitmq } from '@omnibus/adapter-rabbitmq';
import { type Bus, connect, delay } from '@omnibus/core';
import { connect as amqp, type Channel, type ChannelModel, type ConfirmChannel } from 'amqplib';
import { Counter, payload, pipelined, type Runner, type Scenario, type Side } from './harness.js';

const URL = process.env.AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672';
const WINDOW = 100;
const PREFETCH = 200;

const name = (kind: string) => `bench-${kind}-${randomBytes(4).toString('hex')}`;

/**
 * A confirmed, persistent publish carrying what an Omnibus message carries (an id, the content
 * type, the millisecond timestamp header; mandatory when sent to a queue), so the ratio is what
 * Omnibus adds, not what its guarantees cost the broker.
 */
function confirmed(channel: ConfirmChannel, exchange: string, key: string, body: Buffer): Promise<void> {
  const now = Date.now();
  const options = {
    persistent: true,
    mandatory: exchange === '',
    messageId: randomUUID(),
    contentType: 'application/octet-stream',
    timestamp: Math.floor(now / 1000),
    headers: { 'x-omnibus-timestamp': String(now) },
  };
  return new Promise((resolve, reject) => {
    channel.publish(exchange, key, body, options, (error: unknown) => (error ? reject(error) : resolve()));
  });
}

function runner(
  send: () => Promise<unknown>,
  counter: Counter | undefined,
  close: () => Promise<void>,
): Runner {
  return {
    async throughput(count, depth = WINDOW) {
      const done = counter?.expect(count);
      await pipelined(count, depth, send);
      await done;
    },
    async roundTrip() {
      const done = counter?.expect(1);
      await send();
      await done;
    },
    close,
  };
}

type Kind = 'queue' | 'topic' | 'append' | 'append-unpositioned';

function rawSide(kind: Kind): Side {
  return {
    async setup() {
      const connections: ChannelModel[] = [await amqp(URL), await amqp(URL)];
      // A lost connection fails the run through its pending confirms, not as an uncaught 'error'.
      for (const connection of connections) connection.on('error', () => undefined);
      const [producer, consumer] = connections as [ChannelModel, ChannelModel];
      const pub = await producer.createConfirmChannel();
      const sub: Channel = await consumer.createChannel();
      const body = Buffer.from(payload());
      const destination = name(kind);
      const counter = kind.startsWith('append') ? undefined : new Counter();
      let send: () => Promise<void>;
      if (kind.startsWith('append')) {
        await pub.assertQueue(destination, { durable: true, arguments: { 'x-queue-type': 'stream' } });
        await delay(200); // the stream's replica starts
        send = () => confirmed(pub, '', destination, body);
      } else {
        let queue = destination;
        if (kind === 'topic') {
          await sub.assertExchange(destination, 'topic', { durable: true });
          queue = (await sub.assertQueue('', { exclusive: true, autoDelete: true })).queue;
          await sub.bindQueue(queue, destination, 'orders.*.created');
          send = () => confirmed(pub, destination, 'orders.eu.created', body);
        } else {
          await sub.assertQueue(queue, { durable: true });
          send = () => confirmed(pub, '', destination, body);
        }
        await sub.prefetch(PREFETCH);
        await sub.consume(queue, (msg) => {
          if (msg === null) return;
          sub.ack(msg);
          counter!.hit();
        });
      }
      return runner(send, counter, async () => {
        if (kind === 'topic') await pub.deleteExchange(destination);
        else await pub.deleteQueue(destination);
        await Promise.all(connections.map((c) => c.close()));
      });
    },
  };
}

function omnibusSide(kind: Kind): Side {
  return {
    async setup() {
      const options = { adapters: [rabbitmq()] };
      const buses: Bus[] = [await connect(URL, options), await connect(URL, options)];
      const [producer, consumer] = buses as [Bus, Bus];
      const destination = name(kind);
      const counter = kind.startsWith('append') ? undefined : new Counter();
      const body = payload();
      let send: () => Promise<unknown>;
      const consume = { concurrency: PREFETCH, prefetch: PREFETCH };
      if (kind.startsWith('append')) {
        const log = producer.log<Uint8Array>(destination, { codec: 'bytes' });
        const options = { position: kind === 'append' } as const;
        send = () => log.append(body, options);
      } else if (kind === 'topic') {
        await consumer
          .topic<Uint8Array>(destination, { codec: 'bytes' })
          .subscribe('orders.*.created', counter!.hit, consume);
        const topic = producer.topic<Uint8Array>(destination, { codec: 'bytes' });
        send = () => topic.publish(body, { subject: 'orders.eu.created' });
      } else {
        await consumer.queue<Uint8Array>(destination, { codec: 'bytes' }).consume(counter!.hit, consume);
        const queue = producer.queue<Uint8Array>(destination, { codec: 'bytes' });
        send = () => queue.send(body);
      }
      return runner(send, counter, async () => {
        await Promise.all(buses.map((bus) => bus.close()));
        const cleanup = await amqp(URL);
        const channel = await cleanup.createChannel();
        if (kind === 'topic') await channel.deleteExchange(destination);
        else await channel.deleteQueue(destination);
        await cleanup.close();
      });
    },
  };
}

const count = Number(process.env.BENCH_RABBITMQ_COUNT ?? 10_000);

export const rabbitmqScenarios: Scenario[] = [
  {
    name: 'rabbitmq send→consume',
    raw: rawSide('queue'),
    omnibus: omnibusSide('queue'),
    count,
    roundTrips: 300,
  },
  {
    name: 'rabbitmq publish→subscribe',
    raw: rawSide('topic'),
    omnibus: omnibusSide('topic'),
    count,
    roundTrips: 300,
  },
  {
    name: 'rabbitmq log append (omnibus reads the offset back)',
    raw: rawSide('append'),
    omnibus: omnibusSide('append'),
    count,
    roundTrips: 300,
  },
  {
    name: 'rabbitmq log append, position: false',
    raw: rawSide('append-unpositioned'),
    omnibus: omnibusSide('append-unpositioned'),
    count,
    roundTrips: 300,
  },
];
