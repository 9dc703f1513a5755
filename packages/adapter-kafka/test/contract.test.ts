import { runContractSuite } from '@omnibus/contract';
import { describe, it } from 'vitest';
import { connectKafka, kafkaAvailable, restartKafka } from './helpers.js';

if (await kafkaAvailable()) {
  await runContractSuite({
    name: 'kafka',
    connect: (options) => connectKafka(options),
    ...(restartKafka === undefined ? {} : { restartBroker: restartKafka }),
    // Group joins and rebalances take Kafka seconds, not milliseconds.
    timeoutMs: 15_000,
    testTimeoutMs: 120_000,
  });
} else {
  describe.skip('contract: kafka (broker not reachable)', () => it('skipped', () => undefined));
}
