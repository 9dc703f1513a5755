/**
 * Options of the Kafka adapter: from the URL's query (`kafka://h1:9092,h2:9092?partitions=3`) or the
 * object config (`{ adapter: 'kafka', url, sasl, caFile }`), validated with zod, every problem at once.
 */
import {
  hasTlsOptions,
  option,
  type ParsedUrl,
  parseOptions,
  resolveTls,
  type TlsOptions,
  tlsOptionFields,
} from '@omnibus/core';
import type { KafkaConfig, SASLOptions } from 'kafkajs';
import { z } from 'zod';

export type SaslMechanism = 'plain' | 'scram-sha-256' | 'scram-sha-512';

/** Options of the Kafka adapter (kafkajs 2.2.4). The TLS options are core's, the same on every adapter. */
export interface KafkaOptions extends TlsOptions {
  /** Client id sent to the brokers (shows in their logs and quotas). @default the bus `clientId` */
  readonly clientId?: string;
  /** TLS with the system's trusted CAs; Kafka URLs have no TLS scheme. Any TLS option turns it on too. @default false */
  readonly tls?: boolean;
  /** SASL credentials. Credentials in the URL (`kafka://user:pass@host`) fill this in too. @default none */
  readonly sasl?: {
    readonly mechanism: SaslMechanism;
    readonly username: string;
    readonly password: string;
  };
  /** SASL mechanism for credentials given in the URL. @default 'plain' */
  readonly saslMechanism?: SaslMechanism;
  /** Compression of produced batches (kafkajs has gzip built in; others need codec packages). @default 'none' */
  readonly compression?: 'none' | 'gzip';
  /** Partitions of queue and topic topics the adapter creates (a log has its own `partitions`). @default 1 */
  readonly partitions?: number;
  /** Replication factor of the topics the adapter creates. @default min(3, brokers in the cluster) */
  readonly replicationFactor?: number;
  /** TCP connect timeout. @default 3000 */
  readonly connectionTimeoutMs?: number;
  /** Timeout of one request to a broker. @default 30000 */
  readonly requestTimeoutMs?: number;
  /** kafkajs retries of one operation before it fails (then core retries sends after reconnecting). @default 5 */
  readonly retries?: number;
  /** A consumer that sends no heartbeat for this long is removed from its group. @default 30000 */
  readonly sessionTimeoutMs?: number;
  /** How often consumers heartbeat; also how fast they notice a rebalance. @default 3000 */
  readonly heartbeatIntervalMs?: number;
  /** How long the group waits for members to rejoin during a rebalance. @default 60000 */
  readonly rebalanceTimeoutMs?: number;
  /** A consumer that has not joined its group by then fails to start (members that hang can hold a join up). @default 25000 */
  readonly joinTimeoutMs?: number;
  /** Longest a fetch waits for new messages (long poll). @default 500 */
  readonly maxWaitTimeMs?: number;
  /** Finished offsets are committed at most this often (and on close and on rebalance). @default 100 */
  readonly commitIntervalMs?: number;
  /** Extra time a send waits for others to join its batch; 0 batches what is sent while a request is in flight. @default 0 */
  readonly lingerMs?: number;
  /** Messages in one produce request. @default 500 */
  readonly batchMaxMessages?: number;
  /** Bytes in one produce request (keep it under the broker's `message.max.bytes`). @default 1000000 */
  readonly batchMaxBytes?: number;
  /** Largest encoded message accepted (the broker's `message.max.bytes` is 1048588 by default). @default 1000000 */
  readonly maxMessageBytes?: number;
  /** Prefix of the consumer group ids the adapter derives for queues, topic subscriptions and readers. @default 'omnibus' */
  readonly groupPrefix?: string;
  /** kafkajs log level, forwarded to the bus logger. @default 'warn' */
  readonly logLevel?: 'nothing' | 'error' | 'warn' | 'info' | 'debug';
}

export type ResolvedKafkaOptions = ReturnType<typeof resolveOptions>;

const mechanism = z.enum(['plain', 'scram-sha-256', 'scram-sha-512']);
const name = (max: number) =>
  z
    .string()
    .min(1)
    .max(max)
    .regex(/^[A-Za-z0-9._-]+$/, 'use letters, digits, ".", "_" and "-"');

const schema = z
  .object({
    clientId: name(200).optional(),
    tls: option.bool().optional(),
    ...tlsOptionFields,
    sasl: z
      .object({ mechanism, username: z.string().min(1), password: z.string() })
      .strict()
      .optional(),
    saslMechanism: mechanism.default('plain'),
    compression: z.enum(['none', 'gzip']).default('none'),
    partitions: option.int(1).max(10_000).default(1),
    replicationFactor: option.int(1).max(100).optional(),
    connectionTimeoutMs: option.ms().default(3000),
    requestTimeoutMs: option.ms().default(30_000),
    retries: option.int(0).max(100).default(5),
    sessionTimeoutMs: option.ms().default(30_000),
    heartbeatIntervalMs: option.ms().default(3000),
    rebalanceTimeoutMs: option.ms().default(60_000),
    joinTimeoutMs: option.ms().default(25_000),
    maxWaitTimeMs: option.ms().default(500),
    commitIntervalMs: option.int(0).default(100),
    lingerMs: option.int(0).max(60_000).default(0),
    batchMaxMessages: option.int(1).max(100_000).default(500),
    batchMaxBytes: option.int(1024).default(1_000_000),
    maxMessageBytes: option.int(1025).default(1_000_000),
    groupPrefix: name(40).default('omnibus'),
    logLevel: z.enum(['nothing', 'error', 'warn', 'info', 'debug']).default('warn'),
  })
  .strict()
  .superRefine((o, ctx) => {
    if (o.heartbeatIntervalMs >= o.sessionTimeoutMs) {
      ctx.addIssue({
        code: 'custom',
        path: ['heartbeatIntervalMs'],
        message: `must be lower than sessionTimeoutMs (${o.sessionTimeoutMs}); about a third of it is usual`,
      });
    }
  });

/** Every option name, for the README check. */
export const OPTION_NAMES = Object.keys(schema.shape);

/** Validates the raw options and merges in what the URL carries (hosts, credentials). */
export function resolveOptions(
  url: ParsedUrl,
  raw: Readonly<Record<string, unknown>>,
  defaultClientId: string,
) {
  const o = parseOptions('kafka', schema, raw);
  const tls: TlsOptions = o;
  const sasl: SASLOptions | undefined =
    o.sasl ??
    (url.username === undefined
      ? undefined
      : { mechanism: o.saslMechanism, username: url.username, password: url.password ?? '' });
  return {
    ...o,
    brokers: url.hosts.map((h) => `${h.host.includes(':') ? `[${h.host}]` : h.host}:${h.port ?? 9092}`),
    clientId: o.clientId ?? defaultClientId,
    ssl: o.tls === true || hasTlsOptions(tls) ? resolveTls('kafka', tls) : false,
    sasl,
  };
}

/** The kafkajs retry settings, always explicit: kafkajs swaps in tiny test defaults under NODE_ENV=test. */
export function retryOptions(o: ResolvedKafkaOptions): NonNullable<KafkaConfig['retry']> {
  return { initialRetryTime: 300, maxRetryTime: 30_000, factor: 0.2, multiplier: 2, retries: o.retries };
}
