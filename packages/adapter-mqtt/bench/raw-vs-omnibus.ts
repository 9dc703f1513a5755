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
/**
 * What a raw client must send to carry what Omnibus carries (a message id and the send time) on
 * MQTT 5; without it the comparison would be with a client that loses both.
 */
const rawProperties = () =>
  VERSION === 5
    ? { userProperties: { 'x-omnibus-id': crypto.randomUUID(), 'x-omnibus-timestamp': String(Date.now()) } }
    : undefined;

interface Result {
  readonly throughput: number;
  /** CPU time of this process per message (publisher and subscriber), steadier than throughput on a shared machine. */
  readonly cpuUs: number;
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
  const cpu = process.cpuUsage();
  const start = performance.now();
  await pool(COUNT, () => pub.publishAsync(topic, payload, { qos: 1, properties: rawProperties() }));
  await until(() => received >= COUNT);
  const throughput = COUNT / ((performance.now() - start) / 1000);
  const used = process.cpuUsage(cpu);
  const cpuUs = (used.user + used.system) / COUNT;
  const samples: number[] = [];
  for (let i = 0; i < LATENCY_COUNT; i++) {
    const t = performance.now();
    await pub.publishAsync(topic, payload, { qos: 1, properties: rawProperties() });
    samples.push(performance.now() - t);
  }
  await until(() => received >= COUNT + LATENCY_COUNT);
  await Promise.all([sub.endAsync(), pub.endAsync()]);
  return { throughput, cpuUs, ...percentiles(samples) };
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
  const cpu = process.cpuUsage();
  const start = performance.now();
  await pool(COUNT, () => topic.publish(payload, { subject: 'n' }));
  await until(() => received >= COUNT);
  const throughput = COUNT / ((performance.now() - start) / 1000);
  const used = process.cpuUsage(cpu);
  const cpuUs = (used.user + used.system) / COUNT;
  const samples: number[] = [];
  for (let i = 0; i < LATENCY_COUNT; i++) {
    const t = performance.now();
    await topic.publish(payload, { subject: 'n' });
    samples.push(performance.now() - t);
  }
  await until(() => received >= COUNT + LATENCY_COUNT);
  await Promise.all([consumerBus.close(), bus.close()]);
  return { throughput, cpuUs, ...percentiles(samples) };
}

const results: { raw: Result[]; omnibus: Result[] } = { raw: [], omnibus: [] };
for (let round = 1; round <= 3; round++) {
  for (const [name, run] of [
    ['raw', raw],
    ['omnibus', omnibus],
  ] as const) {
    const r = await run();
    results[name].push(r);
    console.log(
      `round ${round} ${name.padEnd(7)} ${Math.round(r.throughput).toString().padStart(7)} msg/s end-to-end, ${r.cpuUs.toFixed(1)} µs CPU/msg, PUBACK p50 ${r.p50.toFixed(3)} ms p99 ${r.p99.toFixed(3)} ms`,
    );
  }
}
const best = (list: Result[], pick: (r: Result) => number, max: boolean) =>
  list.map(pick).reduce((a, b) => (max ? Math.max(a, b) : Math.min(a, b)));
const median = (list: number[]) => [...list].sort((a, b) => a - b)[Math.floor(list.length / 2)]!;
const tput = (list: Result[]) => median(list.map((r) => r.throughput));
console.log(
  `MQTT ${VERSION === 5 ? '5' : '3.1.1'}, QoS 1, 1 KiB, ${COUNT} messages/round: median throughput raw ${Math.round(tput(results.raw))} / omnibus ${Math.round(tput(results.omnibus))} msg/s (ratio ${(tput(results.omnibus) / tput(results.raw)).toFixed(2)}); ` +
    `median CPU raw ${median(results.raw.map((r) => r.cpuUs)).toFixed(1)} / omnibus ${median(results.omnibus.map((r) => r.cpuUs)).toFixed(1)} µs/msg; ` +
    `best p50 raw ${best(results.raw, (r) => r.p50, false).toFixed(3)} / omnibus ${best(results.omnibus, (r) => r.p50, false).toFixed(3)} ms; ` +
    `median p99 raw ${median(results.raw.map((r) => r.p99)).toFixed(3)} / omnibus ${median(results.omnibus.map((r) => r.p99)).toFixed(3)} ms`,
);
