import { createRequire } from 'node:module';
import { type Inject, runContractSuite } from '@omnibus/contract';
import { connect } from '@omnibus/core';
import { restarter } from '@omnibus/test-brokers';
import { afterAll, describe, it } from 'vitest';
import { stomp } from '../src/index.js';
import type { StompitClient } from '../src/stompit.js';
import { ACTIVEMQ_STOMP_URL, brokerOrSkip, RABBITMQ_STOMP_URL } from './brokers.js';

const targets = [
  { name: 'stomp → rabbitmq', url: RABBITMQ_STOMP_URL, broker: 'rabbitmq' as const },
  { name: 'stomp → activemq', url: ACTIVEMQ_STOMP_URL, broker: 'activemq' as const },
  // The conservative profile for unknown STOMP servers, proven on RabbitMQ: its flags must not lie either.
  {
    name: 'stomp (generic profile) → rabbitmq',
    url: `${RABBITMQ_STOMP_URL}?profile=generic`,
    broker: 'rabbitmq' as const,
  },
];

for (const target of targets) {
  if (await brokerOrSkip(target.name, target.url)) {
    const restartBroker = restarter(target.broker);
    await runContractSuite({
      name: target.name,
      // A RabbitMQ restart takes 20–40 s here: sends may wait that long for the connection.
      connect: (options) =>
        connect(target.url, { sendBuffer: { timeoutMs: 120_000 }, ...options, adapters: [stomp()] }),
      testTimeoutMs: 180_000,
      ...(restartBroker === undefined ? {} : { restartBroker }),
      inject: foreignSender(target.url),
    });
  } else {
    describe(`contract: ${target.name}`, () =>
      it.skip(`broker not reachable at ${target.url}`, () => undefined));
  }
}

type StompitConnect = (
  options: { host: string; port: number; connectHeaders: Record<string, string> },
  callback: (error: Error | null, client: StompitClient) => void,
) => StompitClient;

/**
 * A plain stompit connection SENDing to the adapter's queue destination (`/queue/<name>`) with a
 * receipt, as another STOMP application would: its own headers and content type, no x-omnibus-
 * header, no id (the broker may add its own `message-id`).
 */
function foreignSender(url: string): Inject {
  let client: Promise<StompitClient> | undefined;
  afterAll(async () => {
    const opened = client;
    client = undefined;
    if (opened !== undefined) (await opened).disconnect();
  });
  const open = () =>
    new Promise<StompitClient>((resolve, reject) => {
      const where = new URL(url);
      const stompitConnect = (createRequire(import.meta.url)('stompit') as { connect: StompitConnect })
        .connect;
      const opened = stompitConnect(
        {
          host: where.hostname,
          port: Number(where.port || 61613),
          connectHeaders: {
            host: '/',
            login: decodeURIComponent(where.username),
            passcode: decodeURIComponent(where.password),
            'accept-version': '1.2',
            'heart-beat': '0,0',
          },
        },
        (error, connected) => (error === null ? resolve(connected) : reject(error)),
      );
      opened.on('error', () => {
        client = undefined;
      });
    });
  return async (target, message) => {
    client ??= open();
    const sender = await client;
    await new Promise<void>((resolve, reject) => {
      const onError = (error: Error) => reject(error);
      sender.once('error', onError);
      const frame = sender.sendFrame(
        'SEND',
        {
          ...message.headers,
          destination: `/queue/${target.name}`,
          persistent: 'true',
          'content-length': message.body.byteLength,
          ...(message.contentType === undefined ? {} : { 'content-type': message.contentType }),
        },
        {
          onReceipt: () => {
            sender.removeListener('error', onError);
            resolve();
          },
        },
      );
      frame.end(Buffer.from(message.body));
    });
  };
}
