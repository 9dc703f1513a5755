// RabbitMQ with the raw clients: amqplib over AMQP 0-9-1, stompit over the STOMP plugin.

import { brokerAvailable, brokerUrls } from '@omnibus/test-brokers';
import amqp from 'amqplib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { restartBroker, restartTests, uniqueName } from './helpers.js';
import { stompConnect, stompDisconnect, stompSend, stompSubscribe } from './stomp.js';

const urls = brokerUrls();
const amqpAvail = await brokerAvailable('rabbitmq');
if (!amqpAvail.ok) console.warn(`skipping RabbitMQ AMQP tests: ${amqpAvail.reason}`);
const stompAvail = await brokerAvailable('rabbitmq-stomp');
if (!stompAvail.ok) console.warn(`skipping RabbitMQ STOMP tests: ${stompAvail.reason}`);

/** Publishes with a publisher confirm and reads it back with a manual ack. */
async function roundTrip(
  connection: amqp.ChannelModel,
  queue: string,
  body: string,
): Promise<amqp.ConsumeMessage> {
  const channel = await connection.createConfirmChannel();
  try {
    await channel.assertQueue(queue, { durable: true });
    channel.sendToQueue(queue, Buffer.from(body), { persistent: true, headers: { 'x-test': 'omnibus' } });
    await channel.waitForConfirms();
    const message = await new Promise<amqp.ConsumeMessage>((resolve, reject) => {
      channel
        .consume(queue, (msg) => {
          if (msg) resolve(msg);
        })
        .catch(reject);
    });
    channel.ack(message);
    return message;
  } finally {
    await channel.deleteQueue(queue);
    await channel.close();
  }
}

describe.skipIf(!amqpAvail.ok)('RabbitMQ over AMQP (amqplib)', () => {
  let connection: amqp.ChannelModel;
  beforeAll(async () => {
    connection = await amqp.connect(urls.amqp);
  });
  afterAll(async () => {
    await connection?.close();
  });

  it('publishes with a confirm, consumes and acks', async () => {
    const message = await roundTrip(connection, uniqueName('omnibus-raw'), 'hello rabbit');
    expect(message.content.toString()).toBe('hello rabbit');
    expect(message.properties.headers?.['x-test']).toBe('omnibus');
    expect(message.fields.redelivered).toBe(false);
  });

  it('reports the server it talks to', () => {
    const server = connection.connection.serverProperties;
    expect(server.product).toBe('RabbitMQ');
  });
});

describe.skipIf(!stompAvail.ok)('RabbitMQ over STOMP (stompit)', () => {
  it('sends with a receipt, subscribes and acks', async () => {
    const client = await stompConnect(urls.stomp);
    try {
      expect(client.headers.server).toMatch(/^RabbitMQ/);
      const destination = `/queue/${uniqueName('omnibus-raw')}`;
      // RabbitMQ declares the queue on SUBSCRIBE and on SEND with these same properties;
      // the SEND's receipt also tells that the SUBSCRIBE before it was processed.
      const queueProps = { 'auto-delete': 'true', durable: 'false' };
      const subscription = stompSubscribe(client.client, { destination, ...queueProps });
      await stompSend(client.client, { destination, ...queueProps, 'x-test': 'omnibus' }, 'hello stomp');
      const message = await subscription.next();
      expect(message.body).toBe('hello stomp');
      expect(message.headers['x-test']).toBe('omnibus');
      client.client.ack(message.raw);
      subscription.unsubscribe();
    } finally {
      await stompDisconnect(client.client);
    }
  });
});

describe.skipIf(!amqpAvail.ok || !restartTests)('RabbitMQ restart (OMNIBUS_BROKER_RESTART_TESTS=1)', () => {
  it('keeps a persistent message across brokers.sh restart rabbitmq', { timeout: 300_000 }, async () => {
    const queue = uniqueName('omnibus-raw-restart');
    const before = await amqp.connect(urls.amqp);
    const channel = await before.createConfirmChannel();
    await channel.assertQueue(queue, { durable: true });
    channel.sendToQueue(queue, Buffer.from('survives'), { persistent: true });
    await channel.waitForConfirms();
    await before.close().catch(() => undefined);

    const seconds = await restartBroker('rabbitmq');
    console.warn(`brokers.sh restart rabbitmq took ${seconds.toFixed(1)} s`);

    const after = await amqp.connect(urls.amqp);
    try {
      const ch = await after.createChannel();
      const got = await ch.get(queue, { noAck: true });
      expect(got ? got.content.toString() : got).toBe('survives');
      await ch.deleteQueue(queue);
      const message = await roundTrip(after, uniqueName('omnibus-raw'), 'after restart');
      expect(message.content.toString()).toBe('after restart');
    } finally {
      await after.close();
    }
  });
});
