// Apache Kafka (KRaft) with the raw client: kafkajs 2.2.4. Proves kafkajs negotiates with the
// broker version we run (Kafka 4 removed old protocol versions, KIP-896): CreateTopics,
// Produce, a consumer group with explicit commits, OffsetFetch, and ListOffsets by timestamp.

import { brokerAvailable, brokerUrls } from '@omnibus/test-brokers';
import kafkajs from 'kafkajs';
import { describe, expect, it } from 'vitest';
import { restartBroker, restartTests, uniqueName } from './helpers.js';

const { Kafka, logLevel, Partitioners, ConfigResourceTypes } = kafkajs;
type EachMessagePayload = kafkajs.EachMessagePayload;

const urls = brokerUrls();
const avail = await brokerAvailable('kafka');
if (!avail.ok) console.warn(`skipping Kafka tests: ${avail.reason}`);

function client(): kafkajs.Kafka {
  return new Kafka({
    clientId: 'omnibus-raw-test',
    brokers: [...urls.kafkaBrokers],
    logLevel: logLevel.NOTHING,
    retry: { retries: 8 },
  });
}

/** Consumes `count` messages in a group, committing each offset explicitly. */
async function consumeInGroup(kafka: kafkajs.Kafka, topic: string, groupId: string, count: number) {
  const consumer = kafka.consumer({ groupId, sessionTimeout: 10_000, heartbeatInterval: 1_000 });
  const received: EachMessagePayload[] = [];
  await consumer.connect();
  try {
    await consumer.subscribe({ topic, fromBeginning: true });
    await new Promise<void>((resolve, reject) => {
      // kafkajs restarts the consumer itself after a retriable error (e.g. the group
      // coordinator still loading on a fresh cluster); only a crash it gives up on fails.
      consumer.on(consumer.events.CRASH, (event) => {
        if (!event.payload.restart) reject(event.payload.error);
      });
      consumer
        .run({
          autoCommit: false,
          eachMessage: async (payload) => {
            received.push(payload);
            const next = (BigInt(payload.message.offset) + 1n).toString();
            await consumer.commitOffsets([{ topic, partition: payload.partition, offset: next }]);
            if (received.length === count) resolve();
          },
        })
        .catch(reject);
    });
  } finally {
    await consumer.disconnect();
  }
  return received;
}

describe.skipIf(!avail.ok)('Apache Kafka (kafkajs 2.2.4)', () => {
  it('creates a topic, produces, consumes in a group, commits, and lists offsets by timestamp', async () => {
    const kafka = client();
    const admin = kafka.admin();
    const producer = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner, idempotent: true });
    const topic = uniqueName('omnibus-raw');
    const groupId = uniqueName('omnibus-raw-group');
    await admin.connect();
    await producer.connect();
    try {
      expect(await admin.createTopics({ topics: [{ topic, numPartitions: 2 }], waitForLeaders: true })).toBe(
        true,
      );

      const old = Date.now() - 60_000;
      const recent = Date.now();
      const sent = await producer.send({
        topic,
        acks: -1,
        messages: [
          { partition: 0, key: 'a', value: 'old', timestamp: String(old), headers: { 'x-test': 'omnibus' } },
          { partition: 0, key: 'b', value: 'recent', timestamp: String(recent) },
          { partition: 1, key: 'c', value: 'other partition', timestamp: String(recent) },
        ],
      });
      expect(sent.every((r) => r.errorCode === 0)).toBe(true);

      const received = await consumeInGroup(kafka, topic, groupId, 3);
      const values = received.map((r) => `${r.partition}:${r.message.value?.toString()}`).sort();
      expect(values).toEqual(['0:old', '0:recent', '1:other partition']);
      const first = received.find((r) => r.message.value?.toString() === 'old');
      expect(first?.message.headers?.['x-test']?.toString()).toBe('omnibus');
      expect(first?.message.timestamp).toBe(String(old));

      const committed = await admin.fetchOffsets({ groupId, topics: [topic] });
      const byPartition = Object.fromEntries(
        committed[0]?.partitions.map((p) => [p.partition, p.offset]) ?? [],
      );
      expect(byPartition).toEqual({ 0: '2', 1: '1' });

      // ListOffsets by timestamp: the first offset whose timestamp is >= the one asked for.
      const atRecent = await admin.fetchTopicOffsetsByTimestamp(topic, old + 1);
      expect(atRecent.find((p) => p.partition === 0)?.offset).toBe('1');
      const atOld = await admin.fetchTopicOffsetsByTimestamp(topic, old - 1);
      expect(atOld.find((p) => p.partition === 0)?.offset).toBe('0');

      await admin.deleteTopics({ topics: [topic] });
    } finally {
      await producer.disconnect();
      await admin.disconnect();
    }
  });

  it('runs with topic auto-creation off, so adapters must create their topics', async () => {
    const admin = client().admin();
    await admin.connect();
    try {
      const cluster = await admin.describeCluster();
      const config = await admin.describeConfigs({
        includeSynonyms: false,
        resources: [
          {
            type: ConfigResourceTypes.BROKER,
            name: String(cluster.brokers[0]?.nodeId),
            configNames: ['auto.create.topics.enable'],
          },
        ],
      });
      const entry = config.resources[0]?.configEntries.find(
        (e) => e.configName === 'auto.create.topics.enable',
      );
      expect(entry?.configValue).toBe('false');
    } finally {
      await admin.disconnect();
    }
  });
});

describe.skipIf(!avail.ok || !restartTests)('Kafka restart (OMNIBUS_BROKER_RESTART_TESTS=1)', () => {
  it('keeps acknowledged messages across brokers.sh restart kafka', { timeout: 300_000 }, async () => {
    const topic = uniqueName('omnibus-raw-restart');
    const before = client();
    const admin = before.admin();
    const producer = before.producer({ createPartitioner: Partitioners.DefaultPartitioner });
    await admin.connect();
    await producer.connect();
    await admin.createTopics({ topics: [{ topic, numPartitions: 1 }], waitForLeaders: true });
    await producer.send({ topic, acks: -1, messages: [{ value: 'survives' }] });
    await producer.disconnect();
    await admin.disconnect();

    const seconds = await restartBroker('kafka');
    console.warn(`brokers.sh restart kafka took ${seconds.toFixed(1)} s`);

    const after = client();
    const received = await consumeInGroup(after, topic, uniqueName('omnibus-raw-group'), 1);
    expect(received[0]?.message.value?.toString()).toBe('survives');
    const cleanup = after.admin();
    await cleanup.connect();
    await cleanup.deleteTopics({ topics: [topic] });
    await cleanup.disconnect();
  });
});
