/**
 * Raw stompit against Omnibus on the same broker, alternating in one process: queue throughput
 * (N × 1 KiB, receipted SENDs pipelined, `client-individual` ACK after the handler) and round-trip
 * latency (one message at a time). Until the bench/ harness is on main:
 *   node --conditions=source --import tsx packages/adapter-stomp/bench/throughput.ts [rabbitmq|activemq]...
 */
import { randomUUID } from 'node:crypto';
import { createRequire } from 'node:module';
import { connect as netConnect } from 'node:net';
import { connect, parseUrl } from '@omnibus/core';
import { stomp } from '../src/index.js';
import type { IncomingFrame, StompitClient } from '../src/stompit.js';

const COUNT = Number(process.env.BENCH_COUNT ?? 2000);
const ROUND_TRIPS = Number(process.env.BENCH_ROUND_TRIPS ?? 200);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const WINDOW = 256;
const BODY = Uint8Array.from({ length: 1024 }, (_, i) => i % 251);
const URLS = {
  rabbitmq: process.env.STOMP_URL ?? 'stomp://guest:guest@127.0.0.1:61613',
  activemq: process.env.ACTIVEMQ_STOMP_URL ?? 'stomp://admin:admin@127.0.0.1:61614',
};

interface Runner {
  throughput(count: number): Promise<void>;
  roundTrip(): Promise<void>;
  close(): Promise<void>;
}

class Counter {
  private count = 0;
  private target = Number.POSITIVE_INFINITY;
  private wake: (() => void) | undefined;
  readonly hit = () => {
    if (++this.count >= this.target && this.wake !== undefined) {
      const wake = this.wake;
      this.wake = undefined;
      wake();
    }
  };
  expect(more: number): Promise<void> {
    this.target = this.count + more;
    return this.count >= this.target ? Promise.resolve() : new Promise((resolve) => (this.wake = resolve));
  }
}

async function pipelined(count: number, send: () => Promise<unknown>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(WINDOW, count) }, async () => {
      while (next++ < count) await send();
    }),
  );
}

/** stompit as an application would use it: receipts on SEND, ACK after the handler. */
async function raw(url: string): Promise<Runner> {
  const u = parseUrl(url);
  const Client = createRequire(import.meta.url)('stompit/lib/Client') as new (
    s: unknown,
    o: unknown,
  ) => StompitClient;
  const open = () =>
    new Promise<StompitClient>((resolve, reject) => {
      const socket = netConnect({ host: u.hosts[0]!.host, port: u.hosts[0]!.port ?? 61613 });
      const client = new Client(socket, { heartbeat: [10000, 10000] });
      client.on('error', reject);
      socket.once('connect', () =>
        client.connect(
          { host: '/', login: u.username ?? '', passcode: u.password ?? '', 'heart-beat': '10000,10000' },
          (e) => (e === null ? resolve(client) : reject(e)),
        ),
      );
    });
  const producer = await open();
  const consumer = await open();
  const destination = `/queue/bench-raw-${randomUUID()}`;
  const counter = new Counter();
  const profile =
    u.hosts[0]!.port === 61614
      ? { 'activemq.prefetchSize': String(WINDOW) }
      : { 'prefetch-count': String(WINDOW) };
  consumer.setImplicitSubscription('1', 'client-individual', (error, frame?: IncomingFrame) => {
    if (error !== null || frame === undefined) return;
    const chunks: Buffer[] = [];
    frame.on('data', (c: Buffer) => chunks.push(c));
    frame.on('end', () => {
      counter.hit();
      consumer.sendFrame('ACK', { id: String(frame.headers.ack), subscription: '1' }).end();
    });
  });
  consumer.sendFrame('SUBSCRIBE', { id: '1', destination, ack: 'client-individual', ...profile }).end();
  const body = Buffer.from(BODY);
  const send = () =>
    new Promise<void>((resolve) => {
      producer
        .sendFrame(
          'SEND',
          {
            destination,
            persistent: 'true',
            'content-length': body.length,
            'content-type': 'application/octet-stream',
          },
          { onReceipt: resolve },
        )
        .end(body);
    });
  return {
    async throughput(count) {
      const done = counter.expect(count);
      await pipelined(count, send);
      await done;
    },
    async roundTrip() {
      const done = counter.expect(1);
      await send();
      await done;
    },
    async close() {
      producer.destroy();
      consumer.destroy();
    },
  };
}

async function omnibus(url: string): Promise<Runner> {
  const producer = await connect(url, { adapters: [stomp()] });
  const consumer = await connect(url, { adapters: [stomp()] });
  const name = `bench-omnibus-${randomUUID()}`;
  const counter = new Counter();
  const queue = producer.queue<Uint8Array>(name, { codec: 'bytes' });
  await consumer.queue<Uint8Array>(name, { codec: 'bytes' }).consume(counter.hit, { prefetch: WINDOW });
  const send = () => queue.send(BODY);
  return {
    async throughput(count) {
      const done = counter.expect(count);
      await pipelined(count, send);
      await done;
    },
    async roundTrip() {
      const done = counter.expect(1);
      await send();
      await done;
    },
    async close() {
      await Promise.all([producer.close(), consumer.close()]);
    },
  };
}

async function measure(runner: Runner) {
  const t0 = performance.now();
  await runner.throughput(COUNT);
  const throughput = COUNT / ((performance.now() - t0) / 1000);
  const latencies: number[] = [];
  for (let i = 0; i < ROUND_TRIPS; i++) {
    const s = performance.now();
    await runner.roundTrip();
    latencies.push(performance.now() - s);
  }
  latencies.sort((a, b) => a - b);
  const at = (q: number) => latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))]!;
  return { throughput, p50: at(0.5), p99: at(0.99) };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

for (const broker of (process.argv.slice(2).length > 0
  ? process.argv.slice(2)
  : ['rabbitmq', 'activemq']) as (keyof typeof URLS)[]) {
  const url = URLS[broker];
  const results = {
    raw: [] as Awaited<ReturnType<typeof measure>>[],
    omnibus: [] as Awaited<ReturnType<typeof measure>>[],
  };
  for (let round = 0; round < ROUNDS; round++) {
    for (const [side, make] of [
      ['raw', raw],
      ['omnibus', omnibus],
    ] as const) {
      const runner = await make(url);
      results[side].push(await measure(runner));
      await runner.close();
    }
  }
  const sum = (side: 'raw' | 'omnibus') => ({
    throughput: median(results[side].map((r) => r.throughput)),
    p50: median(results[side].map((r) => r.p50)),
    p99: median(results[side].map((r) => r.p99)),
  });
  const r = sum('raw');
  const o = sum('omnibus');
  console.log(
    `${broker}: queue ${COUNT}×1KiB, median of ${ROUNDS} rounds\n` +
      `  raw stompit: ${r.throughput.toFixed(0)} msg/s, p50 ${r.p50.toFixed(2)} ms, p99 ${r.p99.toFixed(2)} ms\n` +
      `  omnibus:     ${o.throughput.toFixed(0)} msg/s, p50 ${o.p50.toFixed(2)} ms, p99 ${o.p99.toFixed(2)} ms\n` +
      `  ratio omnibus/raw: throughput ${(o.throughput / r.throughput).toFixed(2)}, p50 ${(o.p50 / r.p50).toFixed(2)}, p99 ${(o.p99 / r.p99).toFixed(2)}`,
  );
}
process.exit(0);
