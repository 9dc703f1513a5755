/**
 * Options of the Kafka adapter: from the URL's query (`kafka://h1:9092,h2:9092?partitions=3`) or the
 * object config (`{ adapter: 'kafka', url, sasl, ssl }`), validated with zod, every problem at once.
 */
import type { ConnectionOptions as TlsOptions } from 'node:tls';
import { option, type ParsedUrl, parseOptions } from '@omnibus/core';
import type { KafkaConfig, SASLOptions } from 'kafkajs';
import { z } from 'zod';

export type SaslMechanism = 'plain' | 'scram-sha-256' | 'scram-sha-512';

/** TLS settings (PEM strings); `ssl: true` uses the system's trusted CAs. */
export interface KafkaTlsOptions {
  readonly ca?: string | readonly string[];
  readonly cert?: string;
  readonly key?: string;
  readonly passphrase?: string;
  readonly servername?: string;
  /** @default true */
  readonly rejectUnauthorized?: boolean;
}

/** Options of the Kafka adapter (kafkajs 2.2.4). */
export interface KafkaOptions {
  /** Client id sent to the brokers (shows in their logs and quotas). @default the bus `clientId` */
  readonly clientId?: string;
  /** TLS: `true`, or certificates. @default false */
  readonly ssl?: boolean | KafkaTlsOptions;
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

const DEFAULTS = {
  compression: 'none',
  partitions: 1,
  connectionTimeoutMs: 3000,
  requestTimeoutMs: 30_000,
  retries: 5,
  sessionTimeoutMs: 30_000,
  heartbeatIntervalMs: 3000,
  rebalanceTimeoutMs: 60_000,
  joinTimeoutMs: 25_000,
  maxWaitTimeMs: 500,
  commitIntervalMs: 100,
  lingerMs: 0,
  batchMaxMessages: 500,
  batchMaxBytes: 1_000_000,
  maxMessageBytes: 1_000_000,
  groupPrefix: 'omnibus',
  logLevel: 'warn',
} as const satisfies KafkaOptions;

export type ResolvedKafkaOptions = Required<
  Omit<KafkaOptions, 'ssl' | 'sasl' | 'saslMechanism' | 'replicationFactor'>
> & {
  readonly brokers: string[];
  readonly ssl: boolean | TlsOptions;
  readonly sasl: SASLOptions | undefined;
  readonly replicationFactor: number | undefined;
};

const mechanism = z.enum(['plain', 'scram-sha-256', 'scram-sha-512']);
const pem = z.string().min(1);

const schema = z
  .object({
    clientId: z
      .string()
      .min(1)
      .max(200)
      .regex(/^[A-Za-z0-9._-]+$/, 'use letters, digits, ".", "_" and "-"')
      .optional(),
    ssl: z
      .union([
        option.bool(),
        z
          .object({
            ca: z.union([pem, z.array(pem)]).optional(),
            cert: pem.optional(),
            key: pem.optional(),
            passphrase: z.string().optional(),
            servername: z.string().min(1).optional(),
            rejectUnauthorized: z.boolean().optional(),
          })
          .strict(),
      ])
      .optional(),
    sasl: z
      .object({ mechanism, username: z.string().min(1), password: z.string() })
      .strict()
      .optional(),
    saslMechanism: mechanism.optional(),
    compression: z.enum(['none', 'gzip']).optional(),
    partitions: option.int(1).max(10_000).optional(),
    replicationFactor: option.int(1).max(100).optional(),
    connectionTimeoutMs: option.ms().optional(),
    requestTimeoutMs: option.ms().optional(),
    retries: option.int(0).max(100).optional(),
    sessionTimeoutMs: option.ms().optional(),
    heartbeatIntervalMs: option.ms().optional(),
    rebalanceTimeoutMs: option.ms().optional(),
    joinTimeoutMs: option.ms().optional(),
    maxWaitTimeMs: option.ms().optional(),
    commitIntervalMs: option.int(0).optional(),
    lingerMs: option.int(0).max(60_000).optional(),
    batchMaxMessages: option.int(1).max(100_000).optional(),
    batchMaxBytes: option.int(1024).optional(),
    maxMessageBytes: option.int(1025).optional(),
    groupPrefix: z
      .string()
      .min(1)
      .max(40)
      .regex(/^[A-Za-z0-9._-]+$/, 'use letters, digits, ".", "_" and "-"')
      .optional(),
    logLevel: z.enum(['nothing', 'error', 'warn', 'info', 'debug']).optional(),
  })
  .strict()
  .superRefine((o, ctx) => {
    const session = o.sessionTimeoutMs ?? DEFAULTS.sessionTimeoutMs;
    const heartbeat = o.heartbeatIntervalMs ?? DEFAULTS.heartbeatIntervalMs;
    if (heartbeat >= session) {
      ctx.addIssue({
        code: 'custom',
        path: ['heartbeatIntervalMs'],
        message: `must be lower than sessionTimeoutMs (${session}); about a third of it is usual`,
      });
    }
  });

/** Validates the raw options and merges in what the URL carries (hosts, credentials). */
export function resolveOptions(
  url: ParsedUrl,
  raw: Readonly<Record<string, unknown>>,
  defaultClientId: string,
): ResolvedKafkaOptions {
  const { ssl, sasl, saslMechanism, replicationFactor, clientId, ...rest } = parseOptions(
    'kafka',
    schema,
    raw,
  );
  const given = Object.fromEntries(Object.entries(rest).filter(([, v]) => v !== undefined));
  return {
    ...DEFAULTS,
    ...(given as Partial<typeof DEFAULTS>),
    brokers: url.hosts.map((h) => `${h.host.includes(':') ? `[${h.host}]` : h.host}:${h.port ?? 9092}`),
    clientId: clientId ?? defaultClientId,
    ssl: ssl ?? false,
    sasl:
      sasl ??
      (url.username === undefined
        ? undefined
        : { mechanism: saslMechanism ?? 'plain', username: url.username, password: url.password ?? '' }),
    replicationFactor,
  };
}

/** The kafkajs retry settings, always explicit: kafkajs swaps in tiny test defaults under NODE_ENV=test. */
export function retryOptions(o: ResolvedKafkaOptions): NonNullable<KafkaConfig['retry']> {
  return { initialRetryTime: 300, maxRetryTime: 30_000, factor: 0.2, multiplier: 2, retries: o.retries };
}
