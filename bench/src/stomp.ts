/**
 * stomp://: raw stompit against Omnibus on the same broker (RabbitMQ's STOMP plugin, ActiveMQ
 * Classic). Both sides do what at-least-once needs: persistent SENDs each with a RECEIPT,
 * SUBSCRIBE with `ack: client-individual`, one ACK per message after the handler, the same prefetch
 * window, a producer and a consumer connection each. Raw calls its handler as each frame arrives, so
 * Omnibus runs as many handlers at once as the window allows (`concurrency` = `prefetch`). The
 * ratio is Omnibus's cost on top of stompit.
 */
import { randomUUID } from 'node:crypto';
import { createRequire } from 'node:module';
import { connect as netConnect } from 'node:net';
import type { Readable, Writable } from 'node:stream';
import { stomp } from '@omnibus/adapter-stomp';
import { type Bus, connect, parseUrl } from '@omnibus/core';
import { Counter, payload, pipelined, type Runner, type Scenario, type Side } from './harness.js';

const WINDOW = 256;

export const STOMP_URLS = {
  rabbitmq: process.env.STOMP_URL?.trim() || 'stomp://guest:guest@127.0.0.1:61613',
  activemq: process.env.ACTIVEMQ_STOMP_URL?.trim() || 'stomp://admin:admin@127.0.0.1:61614',
} as const;

/** The few parts of stompit's Client used here. */
interface RawClient {
  connect(headers: Record<string, string>, callback: (error: Error | null) => void): void;
  sendFrame(
    command: string,
    headers: Record<string, string | number>,
    options?: { onReceipt: () => void },
  ): Writable;
  setImplicitSubscription(
    id: string,
    ack: string,
    listener: (error: Error | null, frame?: Readable & { headers: Record<string, string> }) => void,
  ): unknown;
  on(event: 'error', listener: (error: Error) => void): void;
  destroy(): void;
}
type RawClientClass = new (socket: unknown, options: { heartbeat: [number, number] }) => RawClient;

function rawSide(broker: keyof typeof STOMP_URLS): Side {
  return {
    async setup(): Promise<Runner> {
      const url = parseUrl(STOMP_URLS[broker]);
      const Client = createRequire(import.meta.url)('stompit/lib/Client') as RawClientClass;
      const open = () =>
        new Promise<RawClient>((resolve, reject) => {
          const socket = netConnect({ host: url.hosts[0]!.host, port: url.hosts[0]!.port ?? 61613 });
          const client = new Client(socket, { heartbeat: [10_000, 10_000] });
          client.on('error', reject);
          socket.once('connect', () =>
            client.connect(
              {
                host: '/',
                login: url.username ?? '',
                passcode: url.password ?? '',
                'heart-beat': '10000,10000',
                'accept-version': '1.2',
              },
              (error) => (error === null ? resolve(client) : reject(error)),
            ),
          );
        });
      const [producer, consumer] = [await open(), await open()];
      const destination = `/queue/bench-raw-${randomUUID()}`;
      const counter = new Counter();
      consumer.setImplicitSubscription('1', 'client-individual', (error, frame) => {
        if (error !== null || frame === undefined) return;
        frame.on('data', () => undefined);
        frame.on('end', () => {
          counter.hit();
          consumer.sendFrame('ACK', { id: frame.headers.ack!, subscription: '1' }).end();
        });
      });
      const prefetch =
        broker === 'activemq'
          ? { 'activemq.prefetchSize': String(WINDOW) }
          : { 'prefetch-count': String(WINDOW) };
      await new Promise<void>((resolve) =>
        consumer
          .sendFrame(
            'SUBSCRIBE',
            { id: '1', destination, ack: 'client-individual', ...prefetch },
            { onReceipt: resolve },
          )
          .end(),
      );
      const body = Buffer.from(payload());
      const send = () =>
        new Promise<void>((resolve) =>
          producer
            .sendFrame(
              'SEND',
              {
                destination,
                persistent: 'true',
                'content-type': 'application/octet-stream',
                'content-length': body.length,
              },
              { onReceipt: resolve },
            )
            .end(body),
        );
      return {
        async throughput(count, depth = WINDOW) {
          const done = counter.expect(count);
          await pipelined(count, depth, send);
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
    },
  };
}

function omnibusSide(broker: keyof typeof STOMP_URLS): Side {
  return {
    async setup(): Promise<Runner> {
      const options = { adapters: [stomp()] };
      const producer: Bus = await connect(STOMP_URLS[broker], options);
      const consumer: Bus = await connect(STOMP_URLS[broker], options);
      const name = `bench-omnibus-${randomUUID()}`;
      const counter = new Counter();
      await consumer
        .queue<Uint8Array>(name, { codec: 'bytes' })
        .consume(counter.hit, { concurrency: WINDOW, prefetch: WINDOW });
      const queue = producer.queue<Uint8Array>(name, { codec: 'bytes' });
      const body = payload();
      const send = () => queue.send(body);
      return {
        async throughput(count, depth = WINDOW) {
          const done = counter.expect(count);
          await pipelined(count, depth, send);
          await done;
        },
        async roundTrip() {
          const done = counter.expect(1);
          await send();
          await done;
        },
        close: async () => {
          await Promise.all([producer.close(), consumer.close()]);
        },
      };
    },
  };
}

export function stompScenarios(broker: keyof typeof STOMP_URLS): Scenario[] {
  return [
    {
      name: `stomp → ${broker} send→consume`,
      raw: rawSide(broker),
      omnibus: omnibusSide(broker),
      count: Number(process.env.BENCH_STOMP_COUNT ?? 3000),
      roundTrips: 300,
    },
  ];
}
