/**
 * Raw kafkajs against Omnibus on the same broker, in the same run, alternating, 1 KiB messages.
 * Not a test: run it by hand (the bench/ harness will take these pairs over):
 *
 *   node --conditions=source --import tsx packages/adapter-kafka/test/bench.ts [messages] [rounds]
 */
import { randomUUID } from 'node:crypto';
import { type Bus, connect, HEADER } from '@omnibus/core';
import kafkajs from 'kafkajs';
import { kafka } from '../src/index.js';
import { adapterOf, KAFKA_BROKERS, kafkaUrl, uniqueName } from './helpers.js';

const messages = Number(process.argv[2] ?? 20_000);
const rounds = Number(process.argv[3] ?? 3);
const body = 'x'.repeat(1024);
const value = Buffer.from(body);

interface Result {
  readonly rate: number;
  readonly p50?: number;
  readonly p99?: number;
  readonly requests?: number;
}

const client = new kafkajs.Kafka({ brokers: KAFKA_BROKERS, logLevel: kafkajs.logLevel.NOTHING });
const admin = client.admin();
const producer = client.producer({ createPartitioner: kafkajs.Partitioners.DefaultPartitioner });
await Promise.all([admin.connect(), producer.connect()]);
const bus: Bus = await connect(kafkaUrl(''), { adapters: [kafka()] });

async function topic(): Promise<string> {
  const name = uniqueName('bench');
  await admin.createTopics({ topics: [{ topic: name, numPartitions: 1, replicationFactor: 1 }] });
  return name;
}

/**
 * kafkajs producer.send with batches of 500 (what an application that batches by hand gets);
 * `headers`: with the id and content-type headers Omnibus adds to each record.
 */
async function rawBatched(headers = false): Promise<Result> {
  const name = await topic();
  const message = headers
    ? () => ({
        value,
        headers: { [HEADER.id]: randomUUID(), [HEADER.contentType]: 'text/plain; charset=utf-8' },
      })
    : () => ({ value });
  const start = performance.now();
  for (let sent = 0; sent < messages; sent += 500) {
    const n = Math.min(500, messages - sent);
    await producer.send({ topic: name, acks: -1, messages: Array.from({ length: n }, message) });
  }
  return { rate: (messages / (performance.now() - start)) * 1000 };
}

/** kafkajs producer.send, one message per call, awaited one after the other. */
async function rawSequential(count: number): Promise<Result> {
  const name = await topic();
  const latencies: number[] = [];
  const start = performance.now();
  for (let i = 0; i < count; i++) {
    const t = performance.now();
    await producer.send({ topic: name, acks: -1, messages: [{ value }] });
    latencies.push(performance.now() - t);
  }
  return { rate: (count / (performance.now() - start)) * 1000, ...percentiles(latencies) };
}

/** Omnibus, one `send`/`append` per message, `window` of them in flight (concurrent callers). */
async function omnibus(kind: 'send' | 'append', count: number, window: number): Promise<Result> {
  const name = uniqueName('bench');
  const send =
    kind === 'send'
      ? (
          (q) => () =>
            q.send(body)
        )(bus.queue<string>(name, { codec: 'text' }))
      : (
          (l) => () =>
            l.append(body)
        )(bus.log<string>(name, { codec: 'text' }));
  await send();
  const latencies: number[] = [];
  const before = adapterOf(bus).produceRequests;
  const start = performance.now();
  let next = 0;
  const worker = async () => {
    while (next < count) {
      next++;
      const t = performance.now();
      await send();
      latencies.push(performance.now() - t);
    }
  };
  await Promise.all(Array.from({ length: window }, worker));
  return {
    rate: (count / (performance.now() - start)) * 1000,
    ...percentiles(latencies),
    requests: adapterOf(bus).produceRequests - before,
  };
}

/** Reading `count` records back: raw kafkajs eachBatch against an Omnibus log reader. */
async function consumeRaw(name: string, count: number): Promise<Result> {
  const consumer = client.consumer({ groupId: uniqueName('raw'), maxWaitTimeInMs: 100 });
  await consumer.connect();
  await consumer.subscribe({ topics: [name], fromBeginning: true });
  let got = 0;
  let start = 0;
  const done = new Promise<void>((resolve) => {
    void consumer.run({
      eachBatch: async ({ batch }) => {
        if (start === 0) start = performance.now();
        got += batch.messages.length;
        if (got >= count) resolve();
      },
    });
  });
  await done;
  const rate = (count / (performance.now() - start)) * 1000;
  await consumer.disconnect();
  return { rate };
}

async function consumeOmnibus(name: string, count: number, concurrency: number): Promise<Result> {
  let got = 0;
  let start = 0;
  let resolve!: () => void;
  const done = new Promise<void>((r) => {
    resolve = r;
  });
  const reader = await bus.log<string>(name, { codec: 'text' }).read(
    () => {
      if (start === 0) start = performance.now();
      if (++got === count) resolve();
    },
    { from: 'earliest', concurrency, prefetch: 1000 },
  );
  await done;
  const rate = (count / (performance.now() - start)) * 1000;
  await reader.close();
  return { rate };
}

function percentiles(values: number[]): { p50: number; p99: number } {
  const sorted = [...values].sort((a, b) => a - b);
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? 0;
  return { p50: at(0.5), p99: at(0.99) };
}

function median(results: Result[]): Result {
  const sorted = [...results].sort((a, b) => a.rate - b.rate);
  return sorted[Math.floor(sorted.length / 2)]!;
}

function show(name: string, r: Result, reference?: Result): void {
  const ratio =
    reference === undefined ? '' : `  (${((r.rate / reference.rate) * 100).toFixed(0)}% of raw batched)`;
  const latency = r.p50 === undefined ? '' : `  p50 ${r.p50.toFixed(1)} ms, p99 ${r.p99!.toFixed(1)} ms`;
  const requests = r.requests === undefined ? '' : `  ${r.requests} requests`;
  console.log(
    `${name.padEnd(44)} ${Math.round(r.rate).toString().padStart(7)} msg/s${latency}${requests}${ratio}`,
  );
}

const results: Record<string, Result[]> = {};
const add = (key: string, r: Result) => {
  results[key] ??= [];
  results[key].push(r);
};
const sequential = Math.min(500, messages);
for (let round = 0; round < rounds; round++) {
  add('raw kafkajs, batches of 500', await rawBatched());
  add('raw kafkajs, batches of 500, Omnibus headers', await rawBatched(true));
  add('omnibus queue.send, 1000 concurrent callers', await omnibus('send', messages, 1000));
  add('omnibus log.append, 1000 concurrent callers', await omnibus('append', messages, 1000));
  add('raw kafkajs, one send at a time', await rawSequential(sequential));
  add('omnibus queue.send, one at a time', await omnibus('send', sequential, 1));
  const log = uniqueName('bench-read');
  await Promise.all(
    Array.from({ length: messages }, () => bus.log<string>(log, { codec: 'text' }).append(body)),
  );
  add('raw kafkajs consume (eachBatch)', await consumeRaw(log, messages));
  add('omnibus log.read, concurrency 1', await consumeOmnibus(log, messages, 1));
  add('omnibus log.read, concurrency 8', await consumeOmnibus(log, messages, 8));
}

console.log(
  `\n${messages} messages of 1 KiB (sequential: ${sequential}), median of ${rounds} rounds, Kafka at ${KAFKA_BROKERS.join(',')}`,
);
const reference = median(results['raw kafkajs, batches of 500']!);
for (const [name, list] of Object.entries(results)) {
  const r = median(list);
  show(name, r, name.includes('consume') || name.includes('read') ? undefined : reference);
}
const rawRead = median(results['raw kafkajs consume (eachBatch)']!);
for (const name of ['omnibus log.read, concurrency 1', 'omnibus log.read, concurrency 8']) {
  console.log(`${name}: ${((median(results[name]!).rate / rawRead.rate) * 100).toFixed(0)}% of raw consume`);
}
await bus.close();
await Promise.all([producer.disconnect(), admin.disconnect()]);
