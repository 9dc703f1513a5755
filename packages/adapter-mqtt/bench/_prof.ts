/**
 * Raw mqtt.js against Omnibus on the same Mosquitto in the same run, alternating, QoS 1, 1 KiB
 * messages (until bench/ on main has its harness). Run from the repo root:
 *   npx tsx --conditions=source packages/adapter-mqtt/bench/raw-vs-omnibus.ts [messages] [protocolVersion]
 * Prints, per round: end-to-end throughput (published and received) with 256 publishes in flight,
 * and the PUBACK latency of sequential publishes (p50/p99); then the Omnibus/raw ratios.
 */
import { connect } from '@omnibus/core';
import mqttjs from 'mqtt';
import { mqtt } from '../src/index.js';

const URL_ = process.env.MQTT_URL ?? 'mqtt://127.0.0.1:1883';
const COUNT = Number(process.argv[2] ?? 20_000);
const VERSION = Number(process.argv[3] ?? 5) as 4 | 5;
const LATENCY_COUNT = 2000;
const WINDOW = 256;
const payload = Buffer.alloc(1024, 120);
const id = () => Math.random().toString(36).slice(2, 10);

interface Result {
  readonly throughput: number;
  readonly p50: number;
  readonly p99: number;
}

async function pool(count: number, run: (i: number) => Promise<unknown>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < count) await run(next++);
  };
  await Promise.all(Array.from({ length: WINDOW }, worker));
}

function percentiles(samples: number[]): { p50: number; p99: number } {
  const sorted = [...samples].sort((a, b) => a - b);
  return { p50: sorted[Math.floor(sorted.length * 0.5)]!, p99: sorted[Math.floor(sorted.length * 0.99)]! };
}

async function until(condition: () => boolean): Promise<void> {
  while (!condition()) await new Promise((resolve) => setImmediate(resolve));
}

async function raw(): Promise<Result> {
  const topic = `bench/raw/${id()}`;
  const sub = await mqttjs.connectAsync(URL_, { protocolVersion: VERSION, clientId: `bench-sub-${id()}` });
  const pub = await mqttjs.connectAsync(URL_, { protocolVersion: VERSION, clientId: `bench-pub-${id()}` });
  let received = 0;
  sub.on('message', () => received++);
  await sub.subscribeAsync(topic, { qos: 1 });
  const start = performance.now();
  await pool(COUNT, () => pub.publishAsync(topic, payload, { qos: 1 }));
  await until(() => received >= COUNT);
  const throughput = COUNT / ((performance.now() - start) / 1000);
  const samples: number[] = [];
  for (let i = 0; i < LATENCY_COUNT; i++) {
    const t = performance.now();
    await pub.publishAsync(topic, payload, { qos: 1 });
    samples.push(performance.now() - t);
  }
  await until(() => received >= COUNT + LATENCY_COUNT);
  await Promise.all([sub.endAsync(), pub.endAsync()]);
  return { throughput, ...percentiles(samples) };
}

async function omnibus(): Promise<Result> {
  const url = `${URL_}${URL_.includes('?') ? '&' : '?'}protocolVersion=${VERSION}`;
  const consumerBus = await connect(url, { adapters: [mqtt()] });
  const bus = await connect(url, { adapters: [mqtt()] });
  const topic = bus.topic<Uint8Array>(`bench-${id()}`, { codec: 'bytes' });
  let received = 0;
  await consumerBus.topic<Uint8Array>(topic.name, { codec: 'bytes' }).subscribe(
    'n',
    () => {
      received++;
    },
    { concurrency: 1, prefetch: 1000 },
  );
  const start = performance.now();
  await pool(COUNT, () => topic.publish(payload, { subject: 'n' }));
  await until(() => received >= COUNT);
  const throughput = COUNT / ((performance.now() - start) / 1000);
  const samples: number[] = [];
  for (let i = 0; i < LATENCY_COUNT; i++) {
    const t = performance.now();
    await topic.publish(payload, { subject: 'n' });
    samples.push(performance.now() - t);
  }
  await until(() => received >= COUNT + LATENCY_COUNT);
  await Promise.all([consumerBus.close(), bus.close()]);
  return { throughput, ...percentiles(samples) };
}


const which = process.argv[4] ?? 'omnibus';
for (let i = 0; i < 2; i++) { const r = which === 'raw' ? await raw() : await omnibus(); console.log(which, Math.round(r.throughput)); }
