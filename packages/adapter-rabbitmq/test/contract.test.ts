import { runContractSuite } from '@omnibus/contract';
import { connect } from '@omnibus/core';
import { describe, it } from 'vitest';
import { rabbitmq } from '../src/index.js';
import { AMQP_URL, restartBroker, unavailable } from './broker.js';

const reason = await unavailable();
if (reason !== undefined) {
  describe.skip(`contract: rabbitmq (${reason})`, () => {
    it('needs RabbitMQ', () => undefined);
  });
} else {
  await runContractSuite({
    name: 'rabbitmq',
    connect: (options) => connect(AMQP_URL, { ...options, adapters: [rabbitmq()] }),
    restartBroker,
  });
}
