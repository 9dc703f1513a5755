/** Topic provisioning: the test broker has auto-creation off, so the adapter's own creation is what runs. */
import { waitFor } from '@omnibus/contract';
import { describe, expect, it } from 'vitest';
import { connectKafka, memoryLogger, suiteAdmin, TEST_PARAMS, uniqueName } from '../helpers.js';

export function provisioningTests(): void {
  describe('kafka topic provisioning', () => {
    const admin = suiteAdmin();

    const partitionsOf = async (topic: string) => {
      const { topics } = await admin().fetchTopicMetadata({ topics: [topic] });
      return topics[0]!.partitions;
    };

    it('auto-creation is off on the test broker, so a topic exists only when the adapter makes it', async () => {
      const [config] = (
        await admin().describeConfigs({
          resources: [{ type: 4, name: String((await admin().describeCluster()).brokers[0]!.nodeId) }],
          includeSynonyms: false,
        })
      ).resources;
      const entry = config!.configEntries.find((e) => e.configName === 'auto.create.topics.enable');
      expect(entry?.configValue).toBe('false');
    });

    it('creates a log with its partitions, a queue with the partitions option, and the dead-letter topic', async () => {
      const bus = await connectKafka({}, `${TEST_PARAMS}&partitions=2`);
      try {
        const log = uniqueName('log');
        await bus.log(log, { partitions: 3 }).append('x');
        expect(await partitionsOf(log)).toHaveLength(3);
        const replicas = (await partitionsOf(log)).map((p) => p.replicas.length);
        const brokers = (await admin().describeCluster()).brokers.length;
        expect(replicas).toEqual(Array(3).fill(Math.min(3, brokers)));

        const queue = uniqueName('q');
        const seen: string[] = [];
        await bus.queue<string>(queue, { maxAttempts: 1 }).consume((m) => {
          seen.push(m.payload);
          throw new Error('to the dead-letter queue');
        });
        expect(await partitionsOf(queue)).toHaveLength(2);
        expect((await admin().listTopics()).includes(`${queue}.dlq`)).toBe(false);
        await bus.queue<string>(queue).send('doomed');
        await waitFor(() => seen.length === 1, 'the delivery', 15_000);
        const dead: string[] = [];
        await bus.queue<string>(`${queue}.dlq`).consume((m) => void dead.push(m.payload));
        await waitFor(() => dead.length === 1, 'the dead letter', 15_000);
        expect(await partitionsOf(`${queue}.dlq`)).toHaveLength(2);
      } finally {
        await bus.close();
      }
    });

    it('uses an existing topic with other settings as it is, with a warning', async () => {
      const name = uniqueName('existing');
      await admin().createTopics({ topics: [{ topic: name, numPartitions: 2, replicationFactor: 1 }] });
      const { logger, lines } = memoryLogger();
      const bus = await connectKafka({ logger });
      try {
        const log = bus.log<number>(name, { partitions: 4 });
        const positions = await Promise.all(
          Array.from({ length: 20 }, (_, i) => log.append(i, { key: `k${i}` }).then((r) => r.position)),
        );
        expect(new Set(positions.map((p) => p.partition))).toEqual(new Set([0, 1]));
        // Later appends take the send path that skips the topic check: the same 2 partitions.
        const later = await Promise.all(
          Array.from({ length: 20 }, (_, i) => log.append(i, { key: `k${i}` }).then((r) => r.position)),
        );
        expect(later.map((p) => p.partition)).toEqual(positions.map((p) => p.partition));
        const offsets = await admin().fetchTopicOffsets(name);
        expect(offsets.reduce((sum, p) => sum + Number(p.high), 0)).toBe(40);
        expect(await partitionsOf(name)).toHaveLength(2);
        const warning = lines.find((l) => l.level === 'warn' && l.message.includes(name));
        expect(warning?.message).toMatch(/exists with 2 partition\(s\).*asked for 4.*Using it as it is/);
      } finally {
        await bus.close();
      }
    });
  });
}
