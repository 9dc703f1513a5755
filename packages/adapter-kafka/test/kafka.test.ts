/**
 * Everything that needs the Kafka broker, in one file: vitest runs files in parallel, and the
 * tests that restart the broker (contract lifecycle, broker loss) must not pull it away from
 * under other Kafka tests. Within a file, tests run one after the other.
 */
import { type Inject, runContractSuite } from '@omnibus/contract';
import type { Producer } from 'kafkajs';
import { afterAll, describe, it } from 'vitest';
import { connectKafka, kafkaAvailable, kafkaClient, restartKafka } from './helpers.js';
import { batchingTests } from './suites/batching.js';
import { connectionResetTests } from './suites/connection-reset.js';
import { consumerTests } from './suites/consumer.js';
import { crashTests } from './suites/crash.js';
import { failureTests } from './suites/failures.js';
import { lagTests } from './suites/lag.js';
import { operationsTests } from './suites/operations.js';
import { provisioningTests } from './suites/provisioning.js';
import { brokerLossTests, clusterSize } from './suites/reliability.js';

/** One plain kafkajs producer for foreign messages, connected on first use. */
let foreign: Promise<Producer> | undefined;
afterAll(async () => {
  const opened = foreign;
  foreign = undefined;
  if (opened !== undefined) await (await opened).disconnect().catch(() => undefined);
});

/**
 * As a non-Omnibus Kafka producer: a record on the topic the adapter uses for the queue (the queue's
 * own name), with acks=all, no key, and only the given headers (no x-omnibus-id).
 */
const inject: Inject = async (target, message) => {
  foreign ??= (async () => {
    const producer = kafkaClient('omnibus-contract-foreign').producer();
    await producer.connect();
    return producer;
  })();
  const producer = await foreign;
  const headers: Record<string, string> = { ...message.headers };
  if (message.contentType !== undefined) headers['content-type'] = message.contentType;
  await producer.send({
    topic: target.name,
    acks: -1,
    messages: [{ value: Buffer.from(message.body), headers }],
  });
};

if (await kafkaAvailable()) {
  await runContractSuite({
    name: 'kafka',
    // A restart of the test broker takes ~30 s (JVM start on two shared cores): sends wait that long.
    connect: (options) => connectKafka({ sendBuffer: { timeoutMs: 120_000 }, ...options }),
    ...(restartKafka === undefined ? {} : { restartBroker: restartKafka }),
    inject,
    // Group joins and rebalances take Kafka seconds, not milliseconds.
    timeoutMs: 15_000,
    testTimeoutMs: 120_000,
  });
  provisioningTests();
  batchingTests();
  consumerTests();
  lagTests();
  operationsTests();
  crashTests();
  connectionResetTests();
  failureTests();
  brokerLossTests(await clusterSize());
} else {
  describe.skip('kafka (broker not reachable)', () => it('skipped', () => undefined));
}
