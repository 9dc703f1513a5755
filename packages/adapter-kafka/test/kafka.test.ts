/**
 * Everything that needs the Kafka broker, in one file: vitest runs files in parallel, and the
 * tests that restart the broker (contract lifecycle, broker loss) must not pull it away from
 * under other Kafka tests. Within a file, tests run one after the other.
 */
import { runContractSuite } from '@omnibus/contract';
import { describe, it } from 'vitest';
import { connectKafka, kafkaAvailable, restartKafka } from './helpers.js';
import { batchingTests } from './suites/batching.js';
import { consumerTests } from './suites/consumer.js';
import { crashTests } from './suites/crash.js';
import { failureTests } from './suites/failures.js';
import { provisioningTests } from './suites/provisioning.js';
import { brokerLossTests, clusterSize } from './suites/reliability.js';

if (await kafkaAvailable()) {
  await runContractSuite({
    name: 'kafka',
    // A restart of the test broker takes ~30 s (JVM start on two shared cores): sends wait that long.
    connect: (options) => connectKafka({ sendBuffer: { timeoutMs: 120_000 }, ...options }),
    ...(restartKafka === undefined ? {} : { restartBroker: restartKafka }),
    // Group joins and rebalances take Kafka seconds, not milliseconds.
    timeoutMs: 15_000,
    testTimeoutMs: 120_000,
  });
  provisioningTests();
  batchingTests();
  consumerTests();
  crashTests();
  failureTests();
  brokerLossTests(await clusterSize());
} else {
  describe.skip('kafka (broker not reachable)', () => it('skipped', () => undefined));
}
