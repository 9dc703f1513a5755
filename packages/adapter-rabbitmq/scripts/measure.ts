/**
 * Raw amqplib vs Omnibus on the same broker in the same run, alternating, 1 KiB messages (until the
 * shared bench/ harness lands): send→consume on a queue, publish→subscribe on a topic, and append on
 * a stream (raw confirm only vs Omnibus's confirm + read-back), plus what a group commit costs.
 *
 *   AMQP_URL=amqp://guest:guest@127.0.0.1:5672 npx tsx --conditions source scripts/measure.ts [messages]
 */
import { randomBytes } from 'node:crypto';
import { connect as omnibus } from '@omnibus/core';
import { connect as amqp, type Channel, type ConfirmChannel } from 'amqplib';
import { rabbitmq } from '../src/index.js';

const URL = process.env.AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672';
const N = Number(process.argv[2] ?? 20_000);
const WINDOW = 100;
const PREFETCH = 100;
const ROUNDS = 2;
const payload = randomBytes(1024);

interface Result {
  readonly msgPerSec: number;
  readonly p50: number;
  readonly p99: number;
}

const tag = () => `bench-${randomBytes(4).toString('hex')}`;

function summarize(latencies: number[], elapsedMs: number): Result {
  latencies.sort((a, b) => a - b);
  const at = (q: number) =>
    latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))] ?? Number.NaN;
  return { msgPerSec: (latencies.length / elapsedMs) * 1000, p50: at(0.5), p99: at(0.99) };
}

/** Runs `send(i)` for i < N with at most WINDOW in flight. */
async function windowed(send: (i: number) => Promise<unknown>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: WINDOW }, async () => {
      while (next < N) await send(next++);
    }),
  );
}

function stamped(): Buffer {
  const body = Buffer.from(payload);
  body.writeDoubleBE(performance.now() + performance.timeOrigin, 0);
  return body;
}
const sentAt = (body: Uint8Array) =>
  Buffer.from(body.buffer, body.byteOffset, body.byteLength).readDoubleBE(0);
const now = () => performance.now() + performance.timeOrigin;

function confirmed(ch: ConfirmChannel, exchange: string, key: string, body: Buffer): Promise<void> {
  return new Promise((resolve, reject) => {
    ch.publish(exchange, key, body, { persistent: true }, (error: unknown) =>
      error ? reject(error) : resolve(),
    );
  });
}

async function rawQueue(topic: boolean): Promise<Result> {
  const [pc, cc] = [await amqp(URL), await amqp(URL)];
  const pub = await pc.createConfirmChannel();
  const sub: Channel = await cc.createChannel();
  const name = tag();
  let queue = name;
  if (topic) {
    await sub.assertExchange(name, 'topic', { durable: true });
    queue = (await sub.assertQueue('', { exclusive: true, autoDelete: true })).queue;
    await sub.bindQueue(queue, name, 'bench.#');
  } else {
    await sub.assertQueue(name, { durable: true });
  }
  await sub.prefetch(PREFETCH);
  const latencies: number[] = [];
  const done = new Promise<void>((resolve) => {
    void sub.consume(queue, (msg) => {
      if (msg === null) return;
      latencies.push(now() - sentAt(msg.content));
      sub.ack(msg);
      if (latencies.length === N) resolve();
    });
  });
  const start = now();
  await windowed(() =>
    topic ? confirmed(pub, name, 'bench.x', stamped()) : confirmed(pub, '', name, stamped()),
  );
  await done;
  const result = summarize(latencies, now() - start);
  if (topic) await pub.deleteExchange(name);
  else await pub.deleteQueue(name);
  await pc.close();
  await cc.close();
  return result;
}

async function omnibusQueue(topic: boolean): Promise<Result> {
  const [p, c] = [
    await omnibus(URL, { adapters: [rabbitmq()] }),
    await omnibus(URL, { adapters: [rabbitmq()] }),
  ];
  const name = tag();
  const latencies: number[] = [];
  let resolveDone!: () => void;
  const done = new Promise<void>((resolve) => {
    resolveDone = resolve;
  });
  const handler = (m: { body: Uint8Array }) => {
    latencies.push(now() - sentAt(m.body));
    if (latencies.length === N) resolveDone();
  };
  const start = now();
  if (topic) {
    await c.topic<Uint8Array>(name, { codec: 'bytes' }).subscribe('bench.#', handler, { prefetch: PREFETCH });
    const t = p.topic<Uint8Array>(name, { codec: 'bytes' });
    await windowed(() => t.publish(stamped(), { subject: 'bench.x' }));
  } else {
    await c.queue<Uint8Array>(name, { codec: 'bytes' }).consume(handler, { prefetch: PREFETCH });
    const q = p.queue<Uint8Array>(name, { codec: 'bytes' });
    await windowed(() => q.send(stamped()));
  }
  await done;
  const result = summarize(latencies, now() - start);
  await c.close();
  await p.close();
  const cleanup = await amqp(URL);
  const ch = await cleanup.createChannel();
  if (topic) await ch.deleteExchange(name);
  else await ch.deleteQueue(name);
  await cleanup.close();
  return result;
}

/** Append latency: raw = publish + confirm; Omnibus = publish + confirm + reading the offset back. */
async function rawAppend(count: number, window: number): Promise<Result> {
  const conn = await amqp(URL);
  const ch = await conn.createConfirmChannel();
  const name = tag();
  await ch.assertQueue(name, { durable: true, arguments: { 'x-queue-type': 'stream' } });
  await new Promise((resolve) => setTimeout(resolve, 200));
  const latencies: number[] = [];
  const start = now();
  let next = 0;
  await Promise.all(
    Array.from({ length: window }, async () => {
      while (next++ < count) {
        const t0 = now();
        await confirmed(ch, '', name, payload);
        latencies.push(now() - t0);
      }
    }),
  );
  const result = summarize(latencies, now() - start);
  await ch.deleteQueue(name);
  await conn.close();
  return result;
}

async function omnibusAppend(count: number, window: number): Promise<Result> {
  const bus = await omnibus(URL, { adapters: [rabbitmq()] });
  const name = tag();
  const log = bus.log<Uint8Array>(name, { codec: 'bytes' });
  await log.append(payload); // declares the stream and starts the read-back consumer
  const latencies: number[] = [];
  const start = now();
  let next = 0;
  await Promise.all(
    Array.from({ length: window }, async () => {
      while (next++ < count) {
        const t0 = now();
        await log.append(payload);
        latencies.push(now() - t0);
      }
    }),
  );
  const result = summarize(latencies, now() - start);
  await bus.close();
  const cleanup = await amqp(URL);
  await (await cleanup.createChannel()).deleteQueue(name);
  await cleanup.close();
  return result;
}

/** Reading a log with and without a group: the group adds a lock, an offsets queue and a commit per interval. */
async function read(group: boolean, count: number): Promise<Result & { commitMs: number }> {
  const bus = await omnibus(URL, { adapters: [rabbitmq()] });
  const name = tag();
  const log = bus.log<Uint8Array>(name, { codec: 'bytes' });
  let next = 0;
  await Promise.all(
    Array.from({ length: 50 }, async () => {
      while (next++ < count) await log.append(stamped());
    }),
  );
  const latencies: number[] = [];
  let finished!: () => void;
  const done = new Promise<void>((resolve) => {
    finished = resolve;
  });
  const start = now();
  const reader = await log.read(
    () => {
      latencies.push(1);
      if (latencies.length === count) finished();
    },
    { from: 'earliest', prefetch: 500, ...(group ? { group: 'g' } : {}) },
  );
  await done;
  const elapsed = now() - start;
  const closing = now();
  await reader.close(); // with a group: the final commit (one confirmed publish) and the lock release
  const commitMs = now() - closing;
  await bus.close();
  const cleanup = await amqp(URL);
  const ch = await cleanup.createChannel();
  await ch.deleteQueue(name);
  if (group) await ch.deleteQueue(`omnibus.offsets:${name}:g`);
  await cleanup.close();
  return { ...summarize(latencies, elapsed), commitMs };
}

const fmt = (r: Result) =>
  `${Math.round(r.msgPerSec)} msg/s, p50 ${r.p50.toFixed(2)} ms, p99 ${r.p99.toFixed(2)} ms`;

async function pair(label: string, raw: () => Promise<Result>, ours: () => Promise<Result>): Promise<void> {
  const raws: Result[] = [];
  const omni: Result[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    raws.push(await raw());
    omni.push(await ours());
  }
  const best = (list: Result[]) => list.reduce((a, b) => (b.msgPerSec > a.msgPerSec ? b : a));
  const r = best(raws);
  const o = best(omni);
  console.log(`${label}\n  raw amqplib: ${fmt(r)}\n  omnibus:     ${fmt(o)}`);
  console.log(
    `  ratio: throughput ${(o.msgPerSec / r.msgPerSec).toFixed(2)}, p99 ${(o.p99 / r.p99).toFixed(2)} (omnibus / raw)`,
  );
}

console.log(
  `${N} messages of 1 KiB, ${WINDOW} sends in flight, prefetch ${PREFETCH}, best of ${ROUNDS} rounds each\n`,
);
await pair(
  'queue send → consume',
  () => rawQueue(false),
  () => omnibusQueue(false),
);
await pair(
  'topic publish → subscribe',
  () => rawQueue(true),
  () => omnibusQueue(true),
);
const appends = Math.min(N, 5000);
await pair(
  `log append, one at a time (${Math.min(appends, 1000)})`,
  () => rawAppend(Math.min(appends, 1000), 1),
  () => omnibusAppend(Math.min(appends, 1000), 1),
);
await pair(
  `log append, ${WINDOW} in flight (${appends})`,
  () => rawAppend(appends, WINDOW),
  () => omnibusAppend(appends, WINDOW),
);
const plain = await read(false, appends);
const grouped = await read(true, appends);
console.log(
  `log read from earliest (${appends})\n  without a group: ${Math.round(plain.msgPerSec)} msg/s\n  with a group:    ${Math.round(
    grouped.msgPerSec,
  )} msg/s, closing (final commit + lock release) ${grouped.commitMs.toFixed(1)} ms`,
);
