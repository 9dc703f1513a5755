/**
 * Options of the Kafka adapter: from the URL's query (`kafka://h1:9092,h2:9092?partitions=3`) or the
 * object config (`{ adapter: 'kafka', url, sasl, caFile }`), read against their spec, every problem at once.
 */
import {
  hasTlsOptions,
  type OptionsOf,
  option,
  type ParsedUrl,
  readOptions,
  tlsOptions,
} from '@omnibus/core';
import type { KafkaConfig, SASLOptions } from 'kafkajs';
import { z } from 'zod';

const mechanisms = ['plain', 'scram-sha-256', 'scram-sha-512'] as const;
export type SaslMechanism = (typeof mechanisms)[number];
const name = <const D extends string | undefined = undefined>(max: number, d?: D) =>
  option.string({
    max,
    pattern: [/^[A-Za-z0-9._-]+$/, 'use letters, digits, ".", "_" and "-"'],
    default: d as D,
  });

const spec = {
  /** Client id sent to the brokers (shows in their logs and quotas). @default the bus `clientId` */
  clientId: name(200),
  /** TLS with the system's trusted CAs; Kafka URLs have no TLS scheme. Any TLS option turns it on too. @default false */
  tls: option.bool(),
  ...tlsOptions,
  /** SASL credentials. Credentials in the URL (`kafka://user:pass@host`) fill this in too. @default none */
  sasl: option.of(
    z.object({ mechanism: z.enum(mechanisms), username: z.string().min(1), password: z.string() }).strict(),
  ),
  /** SASL mechanism for credentials given in the URL. @default 'plain' */
  saslMechanism: option.oneOf(mechanisms, 'plain'),
  /** Compression of produced batches (kafkajs has gzip built in; others need codec packages). @default 'none' */
  compression: option.oneOf(['none', 'gzip'], 'none'),
  /** Partitions of queue and topic topics the adapter creates (a log has its own `partitions`). @default 1 */
  partitions: option.int({ min: 1, max: 10_000, default: 1 }),
  /** Replication factor of the topics the adapter creates. @default min(3, brokers in the cluster) */
  replicationFactor: option.int({ min: 1, max: 100 }),
  /** TCP connect timeout. @default 3000 */
  connectionTimeoutMs: option.ms(3000),
  /** Timeout of one request to a broker. @default 30000 */
  requestTimeoutMs: option.ms(30_000),
  /** kafkajs retries of one operation before it fails (then core retries sends after reconnecting). @default 5 */
  retries: option.int({ max: 100, default: 5 }),
  /** A consumer that sends no heartbeat for this long is removed from its group. @default 30000 */
  sessionTimeoutMs: option.ms(30_000),
  /** How often consumers heartbeat; also how fast they notice a rebalance. @default 3000 */
  heartbeatIntervalMs: option.ms(3000),
  /** How long the group waits for members to rejoin during a rebalance. @default 60000 */
  rebalanceTimeoutMs: option.ms(60_000),
  /** A consumer that has not joined its group by then fails to start (members that hang can hold a join up). @default 25000 */
  joinTimeoutMs: option.ms(25_000),
  /** Longest a fetch waits for new messages (long poll). @default 500 */
  maxWaitTimeMs: option.ms(500),
  /** Finished offsets are committed at most this often (and on close and on rebalance). @default 100 */
  commitIntervalMs: option.int({ default: 100 }),
  /** Extra time a send waits for others to join its batch; 0 batches what is sent while a request is in flight. @default 0 */
  lingerMs: option.int({ max: 60_000, default: 0 }),
  /** Messages in one produce request. @default 500 */
  batchMaxMessages: option.int({ min: 1, max: 100_000, default: 500 }),
  /** Bytes in one produce request (keep it under the broker's `message.max.bytes`). @default 1000000 */
  batchMaxBytes: option.int({ min: 1024, default: 1_000_000 }),
  /** Largest encoded message accepted (the broker's `message.max.bytes` is 1048588 by default). @default 1000000 */
  maxMessageBytes: option.int({ min: 1025, default: 1_000_000 }),
  /** Prefix of the consumer group ids the adapter derives for queues, topic subscriptions and readers. @default 'omnibus' */
  groupPrefix: name(40, 'omnibus'),
  /** kafkajs log level, forwarded to the bus logger. @default 'warn' */
  logLevel: option.oneOf(['nothing', 'error', 'warn', 'info', 'debug'], 'warn'),
};

/** Options of the Kafka adapter (kafkajs 2.2.4). The TLS options are core's, the same on every adapter. */
export type KafkaOptions = OptionsOf<typeof spec>;

export type ResolvedKafkaOptions = ReturnType<typeof resolveOptions>;

/** Every option name, for the README check. */
export const OPTION_NAMES = Object.keys(spec);

/** Validates the raw options and merges in what the URL carries (hosts, credentials). */
export function resolveOptions(
  url: ParsedUrl,
  raw: Readonly<Record<string, unknown>>,
  defaultClientId: string,
) {
  const { options: o, tls } = readOptions('kafka', spec, raw, {
    // Kafka URLs have no TLS scheme: `tls=true` or any TLS option turns it on.
    tls: { on: (o) => o.tls === true || hasTlsOptions(o), needs: 'tls=true' },
    check: (o) => [
      o.heartbeatIntervalMs >= o.sessionTimeoutMs &&
        `heartbeatIntervalMs: must be lower than sessionTimeoutMs (${o.sessionTimeoutMs}); about a third of it is usual`,
    ],
  });
  const sasl: SASLOptions | undefined =
    o.sasl ??
    (url.username === undefined
      ? undefined
      : { mechanism: o.saslMechanism, username: url.username, password: url.password ?? '' });
  return {
    ...o,
    brokers: url.hosts.map((h) => `${h.host.includes(':') ? `[${h.host}]` : h.host}:${h.port ?? 9092}`),
    clientId: o.clientId ?? defaultClientId,
    ssl: tls ?? false,
    sasl,
  };
}

/** The kafkajs retry settings, always explicit: kafkajs swaps in tiny test defaults under NODE_ENV=test. */
export function retryOptions(o: ResolvedKafkaOptions): NonNullable<KafkaConfig['retry']> {
  return { initialRetryTime: 300, maxRetryTime: 30_000, factor: 0.2, multiplier: 2, retries: o.retries };
}
