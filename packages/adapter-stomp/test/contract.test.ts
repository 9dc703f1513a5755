import { runContractSuite } from '@omnibus/contract';
import { connect } from '@omnibus/core';
import { describe, it } from 'vitest';
import { stomp } from '../src/index.js';
import { ACTIVEMQ_STOMP_URL, brokerOrSkip, RABBITMQ_STOMP_URL, restarter } from './brokers.js';

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
    });
  } else {
    describe(`contract: ${target.name}`, () =>
      it.skip(`broker not reachable at ${target.url}`, () => undefined));
  }
}
