/**
 * Topic provisioning: every destination is a Kafka topic, created on first use (the test brokers,
 * like many production clusters, have `auto.create.topics.enable=false`). An existing topic is
 * used as it is; when its partitions or replication differ from what was asked, a warning says so.
 */
import { KeyedOnce, type Logger } from '@omnibus/core';
import type { Admin } from 'kafkajs';
import { connectionError, isConnectionProblem } from './errors.js';

export class Topics {
  /** A failure is not remembered: the next use tries again. */
  private readonly known = new KeyedOnce<number>();

  constructor(
    private readonly admin: Admin,
    private readonly logger: Logger,
    /** Replication factor for new topics (resolved at connect from the cluster size). */
    private readonly replicationFactor: number,
    private readonly timeoutMs: number,
  ) {}

  /** Partitions of each topic provisioned so far: lets the send path skip a promise per message. */
  private readonly partitions = new Map<string, number>();

  /** Creates `name` with `partitions` unless it exists; resolves with the partitions it really has. */
  ensure(name: string, partitions: number): Promise<number> {
    return this.known.run(name, async () => {
      const actual = await this.provision(name, partitions);
      this.partitions.set(name, actual);
      return actual;
    });
  }

  /** The partitions `name` has, once `ensure` has succeeded for it; undefined before. */
  partitionsOf(name: string): number | undefined {
    return this.partitions.get(name);
  }

  private async provision(name: string, partitions: number): Promise<number> {
    const replicationFactor = this.replicationFactor;
    let created: boolean;
    try {
      created = await this.admin.createTopics({
        topics: [{ topic: name, numPartitions: partitions, replicationFactor }],
        waitForLeaders: true,
        timeout: this.timeoutMs,
      });
    } catch (error) {
      throw connectionError(`creating topic "${name}"`, error, isConnectionProblem(error));
    }
    if (created) {
      this.logger.debug({ partitions, replicationFactor }, `created topic "${name}"`);
      return partitions;
    }
    const metadata = await this.admin.fetchTopicMetadata({ topics: [name] });
    const topic = metadata.topics.find((t) => t.name === name);
    const actual = topic?.partitions.length ?? partitions;
    const replicas = Math.max(0, ...(topic?.partitions.map((p) => p.replicas.length) ?? [0]));
    if (actual !== partitions || (replicas > 0 && replicas !== replicationFactor)) {
      this.logger.warn(
        { topic: name, partitions: actual, replicationFactor: replicas },
        `topic "${name}" exists with ${actual} partition(s) and replication factor ${replicas}; asked for ${partitions} and ${replicationFactor}. Using it as it is.`,
      );
    }
    return actual;
  }
}
