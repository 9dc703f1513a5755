/**
 * What a consumer group costs on a RabbitMQ stream, beside `pnpm bench rabbitmq` (which pairs raw
 * amqplib with Omnibus for queues, topics and appends): the same log read from 'earliest' without
 * and with a group — time to the first entry (the group takes its lock and reads its committed
 * offset first), throughput, and closing (the group's final commit and lock release).
 *
 *   AMQP_URL=amqp://guest:guest@127.0.0.1:5672 npx tsx --conditions source scripts/log-costs.ts [entries] [rounds]
 */
import { randomBytes } from 'node:crypto';
import { connect } from '@omnibus/core';
import { connect as amqp } from 'amqplib';
import { rabbitmq } from '../src/index.js';

const URL = process.env.AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672';
const N = Number(process.argv[2] ?? 5000);
const ROUNDS = Number(process.argv[3] ?? 3);
const body = randomBytes(1024);

interface Reading {
  readonly firstMs: number;
  readonly perSecond: number;
  readonly closeMs: number;
}

async function read(log: string, group: string | undefined): Promise<Reading> {
  const bus = await connect(URL, { adapters: [rabbitmq()] });
  let count = 0;
  let first = 0;
  let finished!: () => void;
  const done = new Promise<void>((resolve) => {
    finished = resolve;
  });
  const started = performance.now();
  const reader = await bus.log<Uint8Array>(log, { codec: 'bytes' }).read(
    () => {
      if (count === 0) first = performance.now();
      if (++count === N) finished();
    },
    { from: 'earliest', prefetch: 500, ...(group === undefined ? {} : { group }) },
  );
  await done;
  const ended = performance.now();
  await reader.close();
  const closeMs = performance.now() - ended;
  await bus.close();
  return { firstMs: first - started, perSecond: (N / (ended - first)) * 1000, closeMs };
}

const median = (values: number[]) => values.sort((a, b) => a - b)[Math.floor(values.length / 2)]!;

const log = `costs-${randomBytes(4).toString('hex')}`;
const writer = await connect(URL, { adapters: [rabbitmq()] });
const target = writer.log<Uint8Array>(log, { codec: 'bytes' });
let next = 0;
await Promise.all(
  Array.from({ length: 100 }, async () => {
    while (next++ < N) await target.append(body);
  }),
);
await writer.close();

const plain: Reading[] = [];
const grouped: Reading[] = [];
for (let round = 0; round < ROUNDS; round++) {
  plain.push(await read(log, undefined));
  grouped.push(await read(log, `g${round}`));
}
const show = (label: string, list: Reading[]) =>
  console.log(
    `${label.padEnd(14)} first entry after ${median(list.map((r) => r.firstMs)).toFixed(1)} ms, ` +
      `${Math.round(median(list.map((r) => r.perSecond)))} entries/s, close ${median(list.map((r) => r.closeMs)).toFixed(1)} ms`,
  );
console.log(`${N} entries of 1 KiB read from 'earliest', median of ${ROUNDS} rounds`);
show('without group', plain);
show('with a group', grouped);

const cleanup = await amqp(URL);
const channel = await cleanup.createChannel();
await channel.deleteQueue(log);
for (let round = 0; round < ROUNDS; round++) await channel.deleteQueue(`omnibus.offsets:${log}:g${round}`);
await cleanup.close();
