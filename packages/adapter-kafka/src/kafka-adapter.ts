/**
 * The Kafka adapter (`kafka://host:9092,host:9093`), on kafkajs 2.2.4.
 *
 * Every destination is a Kafka topic, created on first use. A log is native; a topic
 * subscription is a consumer group of its own (routing filtered on the client); a queue is a
 * topic consumed by one group named after it. Core retries and dead-letters by copies sent here
 * (`sendTo`, `send`). Sends are batched (see producer.ts), consumers commit only what their
 * handlers finished (see consume.ts).
 */
import { randomBytes } from 'node:crypto';
import {
  type Adapter,
  type AdapterContext,
  type AdapterFactory,
  type Batcher,
  type BatchOutcome,
  type Capabilities,
  ConnectionError,
  type ConsumeSpec,
  compilePattern,
  type Deliver,
  declareCapabilities,
  isCertificateError,
  type LogPosition,
  type LogSpec,
  type OutgoingMessage,
  type QueueSpec,
  type ReadSpec,
  Recovery,
  type ResolvedReadFrom,
  type SubjectMatcher,
  type Subscription,
  type SubscriptionSpec,
  type TopicSpec,
  unsupported,
} from '@omnibus/core';
import type { Admin, Kafka, KafkaConfig, LogEntry, Producer } from 'kafkajs';
import kafkajs from 'kafkajs';
import { KafkaOperations } from './admin.js';
import { type ConsumerContext, GroupConsumer, type GroupConsumerSpec } from './consume.js';
import { connectionError, isConnectionProblem } from './errors.js';
import { watchedSockets } from './monitor.js';
import { type KafkaOptions, type ResolvedKafkaOptions, resolveOptions, retryOptions } from './options.js';
import { startPositions } from './positions.js';
import { recordBatcher } from './producer.js';
import { OutgoingRecord } from './record.js';
import type { OffsetsSource } from './topic-offsets.js';
import { Topics } from './topics.js';
import { installRecordEncoder } from './wire.js';

const { Kafka: KafkaClient, logLevel: LogLevel, Partitioners } = kafkajs;
// Before anything in the process makes kafkajs load its Produce request (its first send): see wire.ts.
installRecordEncoder();
const LEVELS: Partial<Record<number, 'error' | 'warn' | 'info'>> = {
  [LogLevel.ERROR]: 'error',
  [LogLevel.WARN]: 'warn',
  [LogLevel.INFO]: 'info',
};
const EARLIEST: ResolvedReadFrom = { kind: 'earliest' };
const LATEST: ResolvedReadFrom = { kind: 'latest' };

/**
 * What Kafka does, proven by the contract suite (see the README for why each is what it is).
 * `maxMessageBytes` follows the `maxMessageBytes` option.
 */
export const KAFKA_CAPABILITIES: Capabilities = declareCapabilities({
  native: [
    'topic',
    'log',
    'replay',
    'headers',
    'durableSubscriptions',
    'consumerGroups',
    'deleteSubscription', // DeleteGroups, refused by the broker while the group has members
    'resetGroup', // the group's offsets, set while it has no members
    'lag', // committed offsets against the end offsets
  ],
  emulated: {
    queue: 'a topic consumed by one consumer group named after the queue',
    routing: 'the subject travels in a header; subscribers filter on the client',
    deadLetter: 'core sends a copy to the `<name>.dlq` topic with the reason in headers',
    depth: "what the queue's group has not committed: messages out with a consumer count too",
    purge: 'DeleteRecords up to the end, messages out with a consumer included',
    browse: "read from the queue group's position by a throwaway group that never commits",
    redrive:
      'no redrive primitive: core consumes the dead-letter topic in its queue group and sends confirmed copies',
  },
  none: {
    priority: 'a partition is an ordered log; nothing can jump the line',
    delay: 'no delayed delivery in Kafka; nothing exact can be built on top of it',
    redriveSubscription:
      "a durable subscription is a group's offsets in the topic: a copy appended there reaches every subscription",
  },
  ordering: 'key',
  limits: { maxMessageBytes: 1_000_000 },
});

/** The Kafka adapter factory. Options given here are defaults for what the URL query does not set. */
export function kafka(defaults: KafkaOptions = {}): AdapterFactory {
  return {
    name: 'kafka',
    schemes: ['kafka'],
    async create(target, context) {
      const options = resolveOptions(target.url, { ...defaults, ...target.options }, context.clientId);
      const adapter = new KafkaAdapter(options, context);
      try {
        await adapter.connect();
      } catch (error) {
        await adapter.close().catch(() => undefined);
        // A refused certificate stays refused: not worth retrying as is.
        throw connectionError(
          `could not connect to ${target.url.redacted}`,
          error,
          !isCertificateError(error),
        );
      }
      return adapter;
    },
  };
}

class KafkaAdapter implements Adapter {
  readonly name = 'kafka';
  // Operations: see admin.ts.
  readonly depth: Adapter['depth'] = (queue) => this.operations.depth(queue);
  readonly purge: Adapter['purge'] = (queue) => this.operations.purge(queue);
  readonly browse: Adapter['browse'] = (queue, limit) => this.operations.browse(queue, limit);
  readonly subscriptionAddress = unsupported('kafka', 'redriveSubscription');
  readonly deleteSubscription: Adapter['deleteSubscription'] = (topic, durable) =>
    this.operations.deleteSubscription(topic, durable);
  readonly resetGroup: Adapter['resetGroup'] = (log, group, to) => this.operations.resetGroup(log, group, to);
  readonly groupLag: Adapter['groupLag'] = (log, group) => this.operations.groupLag(log, group);
  readonly capabilities: Capabilities;
  private readonly kafka: Kafka;
  private readonly admin: Admin;
  private readonly offsetsSource: OffsetsSource;
  private readonly producer: Producer;
  private readonly batcher: Batcher<OutgoingRecord, LogPosition>;
  private readonly recovery: Recovery;
  private readonly consumers = new Set<GroupConsumer>();
  private readonly consumerContext: ConsumerContext;
  private readonly operations: KafkaOperations;
  private topics: Topics | undefined;
  /** For the probe: short timeouts and no retries, so an unreachable cluster is noticed at once. */
  private readonly probeAdmin: Admin;
  private closed = false;
  /** While connect() runs: rejects it with a certificate error (see monitor.ts). */
  private refused: ((error: Error) => void) | undefined;

  constructor(
    private readonly options: ResolvedKafkaOptions,
    private readonly context: AdapterContext,
  ) {
    this.capabilities = {
      ...KAFKA_CAPABILITIES,
      limits: { maxMessageBytes: options.maxMessageBytes },
    };
    this.recovery = new Recovery({
      probe: () => this.probe(),
      onDown: (cause) =>
        context.setState(
          'reconnecting',
          new ConnectionError(`lost the connection to the Kafka cluster: ${cause.message}`, {
            adapter: 'kafka',
            cause,
          }),
        ),
      onUp: () => context.setState('connected'),
    });
    this.kafka = new KafkaClient({
      ...clientConfig(options),
      connectionTimeout: options.connectionTimeoutMs,
      requestTimeout: options.requestTimeoutMs,
      retry: retryOptions(options),
      socketFactory: watchedSockets(
        (error) => this.recovery.lost(error),
        (error) => this.refused?.(error),
      ),
      logLevel: LogLevel[options.logLevel.toUpperCase() as Uppercase<typeof options.logLevel>],
      logCreator: () => (entry) => this.log(entry),
    });
    this.admin = this.kafka.admin({ retry: retryOptions(options) });
    this.offsetsSource = { kafka: this.kafka, admin: this.admin, timeoutMs: options.requestTimeoutMs };
    this.probeAdmin = new KafkaClient({
      ...clientConfig(options),
      clientId: `${options.clientId}-probe`,
      connectionTimeout: 1000,
      requestTimeout: 2000,
      retry: { retries: 0 },
      logLevel: LogLevel.NOTHING,
    }).admin({ retry: { retries: 0 } });
    this.consumerContext = {
      kafka: this.kafka,
      admin: this.admin,
      options,
      logger: context.logger,
      reportError: (error) => context.reportError(error),
      lost: (error) => this.recovery.lost(error),
    };
    this.operations = new KafkaOperations({
      kafka: this.kafka,
      admin: this.admin,
      options,
      ensure: (topic, partitions) => this.ensure(topic, partitions),
      guard: (what, operation) => this.guard(what, operation),
    });
    this.producer = this.kafka.producer({
      allowAutoTopicCreation: false,
      createPartitioner: Partitioners.DefaultPartitioner,
      retry: retryOptions(options),
    });
    this.batcher = recordBatcher(
      this.producer,
      options,
      (error) => this.recovery.lost(error),
      // Known when a record is made; partition 0 exists in every topic should it be forgotten since.
      (topic) => this.topics?.partitionsOf(topic) ?? 1,
    );
  }

  async connect(): Promise<void> {
    // A broker certificate that fails verification ends connect() at once: kafkajs would retry it
    // (seconds with the default retries) like a network failure that a retry may fix.
    const refusal = new Promise<never>((_, reject) => {
      this.refused = reject;
    });
    const connecting = Promise.all([this.admin.connect(), this.producer.connect()]);
    connecting.catch(() => undefined);
    try {
      await Promise.race([connecting, refusal]);
    } finally {
      this.refused = undefined;
    }
    const cluster = await this.admin.describeCluster();
    // One replica per broker up to three: right for one test node and for a production cluster.
    const replicationFactor = this.options.replicationFactor ?? Math.min(3, cluster.brokers.length);
    this.topics = new Topics(
      this.admin,
      this.context.logger,
      replicationFactor,
      this.options.requestTimeoutMs,
    );
  }

  /** Produce requests made so far (batching makes it far fewer than messages). */
  get produceRequests(): number {
    return this.batcher.requests;
  }

  // The position a send resolves with is ignored by core: no extra async frame to drop it.
  send(queue: QueueSpec, message: OutgoingMessage): Promise<void> {
    return this.produce(queue.name, this.options.partitions, message) as Promise<unknown> as Promise<void>;
  }

  publish(topic: TopicSpec, message: OutgoingMessage): Promise<void> {
    return this.produce(topic.name, this.options.partitions, message) as Promise<unknown> as Promise<void>;
  }

  /** The batch's records go to the batcher together: one promise for them all, not one a message. */
  sendBatch(queue: QueueSpec, messages: readonly OutgoingMessage[]): Promise<BatchOutcome> {
    return this.produceAll(queue.name, this.options.partitions, messages);
  }

  publishBatch(topic: TopicSpec, messages: readonly OutgoingMessage[]): Promise<BatchOutcome> {
    return this.produceAll(topic.name, this.options.partitions, messages);
  }

  append(log: LogSpec, message: OutgoingMessage): Promise<LogPosition> {
    return this.produce(log.name, log.partitions, message);
  }

  sendTo(address: string, message: OutgoingMessage): Promise<void> {
    return this.produce(address, this.options.partitions, message) as Promise<unknown> as Promise<void>;
  }

  consume(queue: QueueSpec, spec: ConsumeSpec, deliver: Deliver): Promise<Subscription> {
    // A queue keeps what was sent before its first consumer.
    const groupId = `${this.options.groupPrefix}.queue.${queue.name}`;
    return this.open('queue', queue.name, this.options.partitions, groupId, false, EARLIEST, spec, deliver);
  }

  subscribe(topic: TopicSpec, spec: SubscriptionSpec, deliver: Deliver): Promise<Subscription> {
    const { groupPrefix, clientId, partitions } = this.options;
    const throwaway = spec.durable === undefined;
    const groupId = `${groupPrefix}.topic.${topic.name}.${spec.durable ?? `${clientId}.${randomBytes(6).toString('hex')}`}`;
    const filter = spec.pattern === '#' ? undefined : compilePattern(spec.pattern);
    return this.open('topic', topic.name, partitions, groupId, throwaway, LATEST, spec, deliver, filter);
  }

  read(log: LogSpec, spec: ReadSpec, deliver: Deliver): Promise<Subscription> {
    // A group is scoped to its log: kafkajs assigns a group's partitions as if every member read the
    // leader's topics, so one Kafka group shared by readers of different logs would starve some.
    const throwaway = spec.group === undefined;
    const groupId = throwaway
      ? `${this.options.groupPrefix}.reader.${log.name}.${randomBytes(6).toString('hex')}`
      : `${this.options.groupPrefix}.log.${log.name}.${spec.group}`;
    return this.open('log', log.name, log.partitions, groupId, throwaway, spec.from, spec, deliver);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.recovery.close();
    await Promise.allSettled([...this.consumers].map((c) => c.close()));
    await this.batcher.flush().catch(() => undefined);
    await Promise.allSettled([
      this.producer.disconnect(),
      this.admin.disconnect(),
      this.probeAdmin.disconnect(),
    ]);
  }

  /** Opens a group consumer on `topic`, starting where `from` says for partitions the group has not committed. */
  private async open(
    kind: GroupConsumerSpec['kind'],
    topic: string,
    partitions: number,
    groupId: string,
    throwaway: boolean,
    from: ResolvedReadFrom,
    spec: ConsumeSpec,
    deliver: Deliver,
    filter?: SubjectMatcher,
  ): Promise<Subscription> {
    const actual = await this.ensure(topic, partitions);
    const start = await this.guard(`opening "${topic}"`, () =>
      startPositions(this.offsetsSource, topic, actual, from, throwaway ? undefined : groupId),
    );
    const consumer = new GroupConsumer(
      this.consumerContext,
      { kind, topic, groupId, throwaway, ...start, filter, prefetch: spec.prefetch },
      deliver,
      (c) => this.consumers.delete(c),
    );
    this.consumers.add(consumer);
    await consumer.start();
    return consumer;
  }

  /**
   * The per-message path: once the topic is known, the record goes straight to the batcher (no
   * async frame, no promise but the batcher's); a batch that fails for want of a connection reports
   * it once, in producer.ts, not once per message.
   */
  private produce(topic: string, partitions: number, message: OutgoingMessage): Promise<LogPosition> {
    const actual = this.topics?.partitionsOf(topic);
    if (actual === undefined) return this.produceFirst(topic, partitions, message);
    try {
      const record = new OutgoingRecord(message, actual);
      return this.batcher.add(topic, record, record.size);
    } catch (error) {
      return Promise.reject(error);
    }
  }

  private produceAll(
    topic: string,
    partitions: number,
    messages: readonly OutgoingMessage[],
  ): Promise<BatchOutcome> {
    const actual = this.topics?.partitionsOf(topic);
    if (actual === undefined) {
      return this.ensure(topic, partitions).then((known) => this.produceRecords(topic, known, messages));
    }
    return this.produceRecords(topic, actual, messages);
  }

  /** Each message's record, queued together; a message whose record cannot be made fails alone. */
  private produceRecords(
    topic: string,
    partitions: number,
    messages: readonly OutgoingMessage[],
  ): Promise<BatchOutcome> {
    const count = messages.length;
    const records: OutgoingRecord[] = [];
    const sizes: number[] = [];
    let unmade: (Error | undefined)[] | undefined;
    for (let i = 0; i < count; i++) {
      try {
        const record = new OutgoingRecord(messages[i]!, partitions);
        records.push(record);
        sizes.push(record.size);
      } catch (error) {
        unmade ??= new Array(count);
        unmade[i] = error instanceof Error ? error : new Error(String(error));
      }
    }
    return this.batcher.addAll(topic, records, sizes).then((results) => outcomeOf(results, unmade));
  }

  /** The first send to a topic: it is created (or its partitions read) first. */
  private async produceFirst(
    topic: string,
    partitions: number,
    message: OutgoingMessage,
  ): Promise<LogPosition> {
    const actual = await this.ensure(topic, partitions);
    const record = new OutgoingRecord(message, actual);
    return this.batcher.add(topic, record, record.size);
  }

  private ensure(topic: string, partitions: number) {
    const topics = this.topics;
    if (topics === undefined) throw new ConnectionError('not connected', { adapter: 'kafka' });
    return this.guard(`creating "${topic}"`, () => topics.ensure(topic, partitions));
  }

  /** Runs an admin operation; a connection problem also switches the state to `reconnecting`. */
  private async guard<T>(what: string, operation: () => Promise<T>): Promise<T> {
    try {
      return await operation();
    } catch (error) {
      if (error instanceof ConnectionError) {
        if (error.retriable) this.recovery.lost(error);
        throw error;
      }
      if (isConnectionProblem(error)) {
        const wrapped = connectionError(what, error);
        this.recovery.lost(wrapped);
        throw wrapped;
      }
      throw error;
    }
  }

  /** One metadata request without retries: does the cluster answer? */
  private async probe(): Promise<void> {
    try {
      await this.probeAdmin.connect();
      await this.probeAdmin.describeCluster();
    } catch (error) {
      await this.probeAdmin.disconnect().catch(() => undefined);
      throw error;
    }
  }

  private log(entry: LogEntry): void {
    const { message, ...fields } = entry.log;
    this.context.logger[LEVELS[entry.level] ?? 'debug'](fields, `kafkajs ${entry.namespace}: ${message}`);
  }
}

/** Where the cluster is and how to authenticate, shared by the main client and the probe's. */
function clientConfig(o: ResolvedKafkaOptions): KafkaConfig {
  return {
    clientId: o.clientId,
    brokers: o.brokers,
    ssl: o.ssl,
    ...(o.sasl === undefined ? {} : { sasl: o.sasl }),
  };
}

/**
 * A batch's outcome from the batcher's results (`unmade`: the messages whose record could not be
 * made, which the results skip): `undefined` when every message was written.
 */
function outcomeOf(
  results: readonly (LogPosition | Error)[],
  unmade: (Error | undefined)[] | undefined,
): BatchOutcome {
  const count = unmade?.length ?? results.length;
  let outcome: (Error | undefined)[] | undefined;
  let next = 0;
  for (let i = 0; i < count; i++) {
    // A message with a record takes the next result; one without has its own error.
    const result = unmade?.[i] ?? results[next++];
    if (result instanceof Error) {
      outcome ??= new Array(count);
      outcome[i] = result;
    }
  }
  return outcome;
}
