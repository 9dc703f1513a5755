/**
 * Interop with applications that do not use Omnibus, on each broker with headers: a message a plain
 * client sends with a W3C `traceparent` is processed in that trace, and a message Omnibus sends
 * carries a `traceparent` the plain client reads.
 */
import { randomUUID } from 'node:crypto';
import { kafka } from '@omnibus/adapter-kafka';
import { mqtt } from '@omnibus/adapter-mqtt';
import { rabbitmq } from '@omnibus/adapter-rabbitmq';
import { stomp } from '@omnibus/adapter-stomp';
import { type AdapterFactory, type Bus, connect } from '@omnibus/core';
import { type BrokerName, brokerAvailable, brokerUrls } from '@omnibus/test-brokers';
import { SpanKind } from '@opentelemetry/api';
import amqplib from 'amqplib';
import kafkajs from 'kafkajs';
import mqttjs from 'mqtt';
import stompit from 'stompit';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { setUpTelemetry, type Telemetry, traceparentOf, until } from './harness.js';

const urls = brokerUrls();
const TRACE_ID = '4bf92f3577b34da6a3ce929d0e0e4736';
const SPAN_ID = '00f067aa0ba902b7';
const TRACEPARENT = `00-${TRACE_ID}-${SPAN_ID}-01`;
const BODY = JSON.stringify({ from: 'a plain client' });
/** RabbitMQ queues the tests made, deleted by the plain client at the end. */
const queues: string[] = [];

/** A plain broker client: puts a message with headers where Omnibus consumes, and reads what Omnibus sent. */
interface PlainClient {
  /** Starts Omnibus consuming `name`; resolves once it is ready for a plain client's message. */
  consume(bus: Bus, name: string, handler: () => void): Promise<void>;
  /** Sends BODY with `headers` to where `consume` listens. */
  send(name: string, headers: Record<string, string>): Promise<void>;
  /** Makes Omnibus send to `name` and returns the headers the plain client read. */
  sendAndRead(bus: Bus, name: string): Promise<Record<string, string>>;
  close(): Promise<void>;
}

interface InteropSetUp {
  readonly name: string;
  readonly broker: BrokerName;
  readonly url: string;
  readonly adapter: () => AdapterFactory;
  readonly client: () => Promise<PlainClient>;
}

function strings(headers: Record<string, unknown> | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers ?? {})) {
    if (value !== undefined && value !== null) out[name] = String(value);
  }
  return out;
}

async function amqpClient(): Promise<PlainClient> {
  const connection = await amqplib.connect(urls.amqp);
  const channel = await connection.createChannel();
  return {
    async consume(bus, name, handler) {
      await bus.queue(name).consume(handler);
    },
    async send(name, headers) {
      channel.sendToQueue(name, Buffer.from(BODY), { headers, contentType: 'application/json' });
    },
    async sendAndRead(bus, name) {
      await bus.queue(name).send('from omnibus');
      let got: amqplib.GetMessage | false = false;
      await until(async () => {
        got = await channel.get(name, { noAck: true });
        return got !== false;
      }, 10_000);
      const message = got as unknown as amqplib.GetMessage;
      return strings(message.properties.headers);
    },
    async close() {
      for (const name of queues) await channel.deleteQueue(name).catch(() => undefined);
      await connection.close();
    },
  };
}

async function kafkaClient(): Promise<PlainClient> {
  const client = new kafkajs.Kafka({
    clientId: 'omnibus-otel-interop',
    brokers: [...urls.kafkaBrokers],
    logLevel: kafkajs.logLevel.NOTHING,
  });
  const admin = client.admin();
  const producer = client.producer();
  await Promise.all([admin.connect(), producer.connect()]);
  const consumers: kafkajs.Consumer[] = [];
  const create = (topic: string) => admin.createTopics({ topics: [{ topic, numPartitions: 1 }] });
  return {
    async consume(bus, name, handler) {
      await create(name);
      await bus.log(name).read(handler, { group: `g-${name}`, from: 'earliest' });
    },
    async send(name, headers) {
      await producer.send({ topic: name, messages: [{ value: BODY, headers }] });
    },
    async sendAndRead(bus, name) {
      await create(name);
      await bus.log(name).append('from omnibus');
      const consumer = client.consumer({ groupId: `plain-${name}` });
      consumers.push(consumer);
      await consumer.connect();
      await consumer.subscribe({ topic: name, fromBeginning: true });
      let headers: Record<string, string> | undefined;
      await consumer.run({
        eachMessage: async ({ message }) => {
          headers = {};
          for (const [k, v] of Object.entries(message.headers ?? {})) headers[k] = String(v);
        },
      });
      await until(() => headers !== undefined, 30_000);
      return headers!;
    },
    async close() {
      for (const consumer of consumers) await consumer.disconnect();
      await Promise.all([admin.disconnect(), producer.disconnect()]);
    },
  };
}

async function mqttClient(): Promise<PlainClient> {
  const client = await mqttjs.connectAsync(urls.mqtt, {
    protocolVersion: 5,
    clientId: `otel-${randomUUID().slice(0, 8)}`,
  });
  // A topic `t` with subject `a` is the MQTT topic `t/a` (the adapter's README).
  return {
    async consume(bus, name, handler) {
      await bus.topic(name).subscribe('a', handler);
    },
    async send(name, headers) {
      await client.publishAsync(`${name}/a`, BODY, { qos: 1, properties: { userProperties: headers } });
    },
    async sendAndRead(bus, name) {
      let headers: Record<string, string> | undefined;
      client.on('message', (topic, _payload, packet) => {
        if (topic === `${name}/a`) headers = strings(packet.properties?.userProperties);
      });
      await client.subscribeAsync(`${name}/#`, { qos: 1 });
      await bus.topic(name).publish('from omnibus', { subject: 'a' });
      await until(() => headers !== undefined, 10_000);
      return headers!;
    },
    async close() {
      await client.endAsync();
    },
  };
}

function stompClient(url: string): () => Promise<PlainClient> {
  return async () => {
    const u = new URL(url);
    const client = await new Promise<stompit.Client>((resolve, reject) => {
      stompit.connect(
        {
          host: u.hostname,
          port: Number(u.port),
          connectHeaders: {
            host: '/',
            login: decodeURIComponent(u.username),
            passcode: decodeURIComponent(u.password),
            'accept-version': '1.2',
          },
        },
        (error, c) => (error ? reject(error) : resolve(c)),
      );
    });
    return {
      async consume(bus, name, handler) {
        await bus.queue(name).consume(handler);
      },
      async send(name, headers) {
        const frame = client.send({
          destination: `/queue/${name}`,
          'content-type': 'application/json',
          ...headers,
        });
        frame.end(BODY);
      },
      async sendAndRead(bus, name) {
        await bus.queue(name).send('from omnibus');
        const headers = await new Promise<Record<string, string>>((resolve, reject) => {
          client.subscribe({ destination: `/queue/${name}`, ack: 'auto' }, (error, message) => {
            if (error) return reject(error);
            resolve(strings((message as unknown as { headers: Record<string, unknown> }).headers));
            message.resume();
          });
        });
        return headers;
      },
      async close() {
        client.disconnect();
      },
    };
  };
}

const setUps: InteropSetUp[] = [
  { name: 'RabbitMQ', broker: 'rabbitmq', url: urls.amqp, adapter: rabbitmq, client: amqpClient },
  {
    name: 'Kafka',
    broker: 'kafka',
    url: `kafka://${urls.kafkaBrokers.join(',')}?heartbeatIntervalMs=500&sessionTimeoutMs=10000&rebalanceTimeoutMs=10000&maxWaitTimeMs=250`,
    adapter: kafka,
    client: kafkaClient,
  },
  { name: 'MQTT 5', broker: 'mosquitto', url: urls.mqtt, adapter: mqtt, client: mqttClient },
  {
    name: 'STOMP → RabbitMQ',
    broker: 'rabbitmq-stomp',
    url: urls.stomp,
    adapter: stomp,
    client: stompClient(urls.stomp),
  },
  {
    name: 'STOMP → ActiveMQ',
    broker: 'activemq',
    url: urls.activemqStomp,
    adapter: stomp,
    client: stompClient(urls.activemqStomp),
  },
];

for (const setUp of setUps) {
  const availability = await brokerAvailable(setUp.broker);
  if (!availability.ok) {
    describe.skip(`${setUp.name} (${availability.reason})`, () => it('needs the broker', () => undefined));
    continue;
  }
  describe(`${setUp.name}: interop with a plain client`, { timeout: 90_000 }, () => {
    let telemetry: Telemetry;
    let bus: Bus;
    let client: PlainClient;
    beforeEach(async () => {
      telemetry = setUpTelemetry();
      bus = await connect(setUp.url, { clientId: 'omnibus-otel-interop', adapters: [setUp.adapter()] });
      client = await setUp.client();
    });
    afterEach(async () => {
      await client.close();
      await bus.close();
      await telemetry.shutdown();
    });
    const name = () => `otel-interop-${randomUUID().slice(0, 8)}`;

    it("processes a plain client's message in the trace of its traceparent", async () => {
      const destination = name();
      queues.push(destination);
      let handled = 0;
      await client.consume(bus, destination, () => {
        handled++;
      });
      await client.send(destination, { traceparent: TRACEPARENT, tracestate: 'vendor=1' });
      const [run] = await telemetry.waitForSpans((s) => s.kind === SpanKind.CONSUMER, 1, 30_000);
      expect(handled).toBe(1);
      expect(run!.spanContext().traceId).toBe(TRACE_ID);
      expect(run!.parentSpanContext?.spanId).toBe(SPAN_ID);
      expect(run!.spanContext().traceState?.get('vendor')).toBe('1');
    });

    it('sends a traceparent a plain client reads', async () => {
      const destination = name();
      queues.push(destination);
      const headers = await client.sendAndRead(bus, destination);
      const [sent] = telemetry.spans().filter((s) => s.kind === SpanKind.PRODUCER);
      expect(headers.traceparent).toBe(traceparentOf(sent!));
    });
  });
}
