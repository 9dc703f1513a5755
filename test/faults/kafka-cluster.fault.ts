/**
 * Fault 5: Kafka loses a node. Runs last, and only with OMNIBUS_FAULTS_KAFKA_CLUSTER=1 (`.ci/run`
 * sets it): it re-forms Kafka as a three-node cluster (`KAFKA_NODES=3 brokers.sh up kafka`, which
 * wipes Kafka's data), stops the node that leads the queue's partition mid-stream, starts it again,
 * and in the end always puts Kafka back as the single node every other test expects
 * (`KAFKA_NODES=1`, data wiped again).
 */
import { brokers } from '@omnibus/test-brokers';
import kafkajs from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  countsOf,
  drain,
  guardProcess,
  open,
  report,
  sleep,
  startStream,
  uniqueName,
  until,
  type Watched,
} from './harness.js';
import { type Endpoint, SETUPS } from './setups.js';

guardProcess();

const enabled = ['1', 'true', 'yes'].includes(
  process.env.OMNIBUS_FAULTS_KAFKA_CLUSTER?.trim().toLowerCase() ?? '',
);
const NODES: readonly Endpoint[] = [9092, 9093, 9094].map((port) => ({ host: '127.0.0.1', port }));
const kafkaSetup = SETUPS.find((s) => s.name === 'kafka')!;
const cluster = { ...kafkaSetup, name: 'kafka ×3', endpoints: NODES };

async function admin<R>(use: (a: kafkajs.Admin) => Promise<R>): Promise<R> {
  const client = new kafkajs.Kafka({
    clientId: 'omnibus-faults-admin',
    brokers: NODES.map((n) => `${n.host}:${n.port}`),
    logLevel: kafkajs.logLevel.NOTHING,
  });
  const a = client.admin();
  await a.connect();
  try {
    return await use(a);
  } finally {
    await a.disconnect();
  }
}

if (!enabled) console.warn('[faults] skipping Kafka node loss: set OMNIBUS_FAULTS_KAFKA_CLUSTER=1 (CI does)');

describe.runIf(enabled)('kafka node loss (3-node cluster)', () => {
  beforeAll(async () => {
    await brokers('stop', 'kafka');
    await brokers('start', 'kafka', { KAFKA_NODES: '3' });
    const size = await admin(async (a) => (await a.describeCluster()).brokers.length);
    if (size !== 3) {
      throw new Error(
        `Kafka has ${size} node(s) after KAFKA_NODES=3 up kafka: it was not started by this clone's ` +
          'scripts/brokers.sh (set OMNIBUS_BROKERS_SH to the script that started it)',
      );
    }
  }, 600_000);

  afterAll(async () => {
    await brokers('stop', 'kafka');
    await brokers('start', 'kafka', { KAFKA_NODES: '1' });
  }, 600_000);

  it('every confirmed send arrives when the partition leader stops mid-stream and comes back', {
    timeout: 600_000,
  }, async () => {
    const buses: Watched[] = [];
    try {
      const options = { sendBuffer: { timeoutMs: 180_000, maxMessages: 10_000 } };
      const producer = await open(cluster, NODES, options);
      buses.push(producer);
      const consumer = await open(cluster, NODES, options);
      buses.push(consumer);
      const queue = uniqueName('node-loss');
      const stream = await startStream(producer.bus, consumer.bus, queue);
      try {
        expect(
          await until(() => stream.confirmed.size >= 100, 60_000),
          '100 sends before the node loss',
        ).toBe(true);
        const leader = await admin(async (a) => {
          const meta = await a.fetchTopicMetadata({ topics: [queue] });
          return meta.topics[0]?.partitions[0]?.leader ?? 1;
        });
        const faultAt = Date.now();
        await brokers('stop', `kafka-${leader}`);
        const stoppedAt = Date.now();
        // Sends go on against two nodes for a while (min.insync.replicas=2 still holds).
        await sleep(10_000);
        const during = stream.confirmedSince(stoppedAt);
        await brokers('start', `kafka-${leader}`);
        const upAt = Date.now();
        const recovered = await until(() => stream.confirmedSince(upAt) >= 50, 180_000, 100);
        const recoveredAt = Date.now();
        await stream.stop();
        await drain(stream, 180_000);
        const counts = countsOf(stream);
        report({
          setup: cluster.name,
          fault: 'partition leader stopped',
          counts,
          // Failover: the longest time without a confirmed send while the leader was down.
          recover: { ms: stream.longestPause(faultAt, upAt), from: 'longest pause (failover)' },
          key: `${during} confirmed while kafka-${leader} was down`,
          timings: {
            'node down': upAt - faultAt,
            '50 confirmed after node up': recovered ? recoveredAt - upAt : undefined,
          },
        });
        expect(recovered).toBe(true);
        expect(counts.missing.slice(0, 10), 'confirmed sends that never arrived').toEqual([]);
      } finally {
        await stream.stop();
      }
    } finally {
      await Promise.all(buses.map((w) => w.bus.close().catch(() => undefined)));
    }
  });
});
