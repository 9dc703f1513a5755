/**
 * mqtt:// (Mosquitto from scripts/brokers.sh, or MQTT_URL): raw mqtt.js against Omnibus, QoS 1.
 * The raw side publishes and subscribes on two connections, as Omnibus does, and — on MQTT 5 —
 * carries the same id and timestamp user properties that Omnibus puts on every message (without
 * them it would be a client that loses both). Queue: a shared subscription with one member.
 *
 * The same windows on both sides: the publisher may have `WINDOW` publishes awaiting their PUBACK
 * (raw mqtt.js has no limit of its own, so the depth is its only bound; Omnibus gets
 * `maxInflight=WINDOW`), and the subscriber may hold `WINDOW` unacknowledged messages (MQTT 5
 * receive maximum on both sides; Omnibus also runs up to `WINDOW` handlers at once, raw mqtt.js
 * calls its handler as each message arrives and acks after it). On MQTT 3.1.1 there is no receive
 * maximum: Mosquitto's `max_inflight_messages` (1000 in tools/mosquitto) bounds both alike.
 */
import { randomUUID } from 'node:crypto';
import { mqtt as mqttAdapter } from '@omnibus/adapter-mqtt';
import { type Bus, connect } from '@omnibus/core';
import mqtt from 'mqtt';
import { Counter, counting, payload, type Runner, type Scenario, type Side } from './harness.js';

const URL = process.env.MQTT_URL ?? 'mqtt://127.0.0.1:1883';
/** Larger than the deepest depth the bench runs at (500), as the raw side has no window of its own. */
const WINDOW = 1000;
let unique = 0;

function withVersion(version: 4 | 5): string {
  return `${URL}${URL.includes('?') ? '&' : '?'}protocolVersion=${version}&maxInflight=${WINDOW}`;
}

function rawSide(version: 4 | 5, kind: 'queue' | 'topic'): Side {
  return {
    async setup(): Promise<Runner> {
      const name = `bench-raw-${process.pid}-${unique++}`;
      const topic = kind === 'queue' ? `omnibus/queue/${name}` : `${name}/orders/eu/created`;
      const filter = kind === 'queue' ? `$share/${name}/${topic}` : `${name}/orders/+/created`;
      const options = { protocolVersion: version, reconnectPeriod: 0 } as const;
      const sub = await mqtt.connectAsync(URL, {
        ...options,
        clientId: `${name}-sub`,
        ...(version === 5 ? { properties: { receiveMaximum: WINDOW } } : {}),
      });
      const pub = await mqtt.connectAsync(URL, { ...options, clientId: `${name}-pub` });
      const counter = new Counter();
      sub.on('message', counter.hit);
      await sub.subscribeAsync(filter, { qos: 1 });
      const body = Buffer.from(payload());
      const send = () =>
        pub.publishAsync(topic, body, {
          qos: 1,
          ...(version === 5
            ? {
                properties: {
                  userProperties: { 'x-omnibus-id': randomUUID(), 'x-omnibus-timestamp': String(Date.now()) },
                },
              }
            : {}),
        });
      return {
        ...counting(counter, WINDOW, send),
        async close() {
          await Promise.all([sub.endAsync(), pub.endAsync()]);
        },
      };
    },
  };
}

function omnibusSide(version: 4 | 5, kind: 'queue' | 'topic'): Side {
  return {
    async setup(): Promise<Runner> {
      const adapters = [mqttAdapter()];
      const consumerBus: Bus = await connect(withVersion(version), { adapters });
      const bus: Bus = await connect(withVersion(version), { adapters });
      const counter = new Counter();
      const body = payload();
      const name = `bench-omnibus-${process.pid}-${unique++}`;
      let send: () => Promise<unknown>;
      if (kind === 'queue') {
        await consumerBus
          .queue<Uint8Array>(name, { codec: 'bytes' })
          .consume(counter.hit, { concurrency: WINDOW, prefetch: WINDOW });
        const queue = bus.queue<Uint8Array>(name, { codec: 'bytes' });
        send = () => queue.send(body);
      } else {
        await consumerBus
          .topic<Uint8Array>(name, { codec: 'bytes' })
          .subscribe('orders.*.created', counter.hit, { concurrency: WINDOW, prefetch: WINDOW });
        const topic = bus.topic<Uint8Array>(name, { codec: 'bytes' });
        send = () => topic.publish(body, { subject: 'orders.eu.created' });
      }
      return {
        ...counting(counter, WINDOW, send),
        async close() {
          await Promise.all([consumerBus.close(), bus.close()]);
        },
      };
    },
  };
}

const COUNT = Number(process.env.BENCH_MQTT_COUNT ?? 20_000);

export const mqttScenarios: Scenario[] = [
  {
    name: 'mqtt 5 publish→subscribe',
    raw: rawSide(5, 'topic'),
    omnibus: omnibusSide(5, 'topic'),
    count: COUNT,
    roundTrips: 1000,
  },
  {
    name: 'mqtt 5 send→consume',
    raw: rawSide(5, 'queue'),
    omnibus: omnibusSide(5, 'queue'),
    count: COUNT,
    roundTrips: 1000,
  },
  {
    name: 'mqtt 3.1.1 publish→subscribe',
    raw: rawSide(4, 'topic'),
    omnibus: omnibusSide(4, 'topic'),
    count: COUNT,
    roundTrips: 1000,
  },
];
