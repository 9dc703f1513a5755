/**
 * Everything that needs the broker, in one file so it runs in order: the contract suite, then this
 * adapter's own tests, then the broker restart (which would break tests running beside it).
 */
import { runContractSuite } from '@omnibus/contract';
import { connect } from '@omnibus/core';
import { describe, it } from 'vitest';
import { rabbitmq } from '../src/index.js';
import { AMQP_URL, restartBroker, unavailable } from './broker.js';
import { behaviourTests } from './live/behaviour.js';
import { connectionTests } from './live/connection.js';
import { logTests } from './live/logs.js';
import { restartTests } from './live/restart.js';

const reason = await unavailable();
if (reason !== undefined) {
  describe.skip(`rabbitmq (${reason})`, () => {
    it('needs RabbitMQ', () => undefined);
  });
} else {
  await runContractSuite({
    name: 'rabbitmq',
    // A full restart of the node takes ~30 s here (brokers.sh waits for every plugin): sends may
    // wait that long for the reconnection, so the send buffer waits longer than its 30 s default.
    connect: (options) =>
      connect(AMQP_URL, { sendBuffer: { timeoutMs: 120_000 }, ...options, adapters: [rabbitmq()] }),
    restartBroker,
    testTimeoutMs: 180_000,
  });
  connectionTests();
  behaviourTests();
  logTests();
  restartTests();
}
