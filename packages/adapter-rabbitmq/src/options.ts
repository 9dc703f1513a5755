/**
 * Options of the RabbitMQ adapter, their zod schema (URL query and object form alike), and how
 * they become amqplib's connection settings. Every field has a default; the URL decides hosts,
 * credentials and the vhost.
 */
import { readFileSync } from 'node:fs';
import type { ParsedUrl } from '@omnibus/core';
import { ConfigError, option, parseOptions } from '@omnibus/core';
import type { Options as AmqpOptions, SocketOptions } from 'amqplib';
import { credentials } from 'amqplib';
import { z } from 'zod';

export const ADAPTER = 'rabbitmq';

/** Options of the RabbitMQ adapter: in the URL query (`amqp://host?heartbeat=10`) or the object config. */
export interface RabbitmqOptions {
  /** Heartbeat interval in seconds; `0` turns heartbeats off. @default 30 */
  readonly heartbeat?: number;
  /**
   * TCP_NODELAY: small frames (acks, publishes awaiting a confirm) leave at once. Off, the kernel
   * batches them (Nagle): a little less CPU under load, but a lone frame can wait ~40 ms for a
   * delayed ACK — measured here: a sequential log append took 47 ms instead of 0.7 ms. @default true
   */
  readonly noDelay?: boolean;
  /** Bound on one TCP + AMQP handshake attempt, in milliseconds. @default 10000 */
  readonly connectTimeoutMs?: number;
  /** Largest frame the client accepts, in bytes (negotiated with the broker). @default 131072 */
  readonly frameMax?: number;
  /** Most channels on the connection; `0` takes the broker's limit. @default 0 */
  readonly channelMax?: number;
  /** Failed attempts at start-up before `connect` gives up (hosts are tried in turn). @default twice the number of hosts */
  readonly connectRetries?: number;
  /** First reconnection delay after a lost connection, in milliseconds. @default 100 */
  readonly reconnectDelayMs?: number;
  /** Longest reconnection delay (exponential backoff with jitter), in milliseconds. @default 5000 (or reconnectDelayMs if larger) */
  readonly reconnectMaxDelayMs?: number;
  /** `PLAIN` (user and password from the URL) or `EXTERNAL` (the TLS client certificate). @default 'PLAIN' */
  readonly authMechanism?: 'PLAIN' | 'EXTERNAL';
  /** TLS (amqps://): trusted CA certificates, PEM. @default the system's */
  readonly ca?: string | Buffer;
  /** TLS: client certificate, PEM. @default none */
  readonly cert?: string | Buffer;
  /** TLS: client private key, PEM. @default none */
  readonly key?: string | Buffer;
  /** TLS: passphrase of `key`. @default none */
  readonly passphrase?: string;
  /** TLS: read `ca` from this file (handy in a URL query). @default none */
  readonly caFile?: string;
  /** TLS: read `cert` from this file. @default none */
  readonly certFile?: string;
  /** TLS: read `key` from this file. @default none */
  readonly keyFile?: string;
  /** TLS: verify the broker's certificate. Turning it off is for tests only. @default true */
  readonly rejectUnauthorized?: boolean;
  /** TLS: server name for SNI and certificate checks. @default the host */
  readonly servername?: string;
  /** Type of the queues Omnibus declares (work queues, dead-letter queues, durable subscriptions). @default 'classic' */
  readonly queueType?: 'classic' | 'quorum';
  /** Declare classic queues lazy (`x-queue-mode: lazy`: messages go to disk early). @default false */
  readonly lazyQueues?: boolean;
  /** `x-message-ttl` on declared queues: messages older than this are dropped by the broker. @default none */
  readonly messageTtlMs?: number;
  /** `x-max-length` on declared queues. @default none */
  readonly maxLength?: number;
  /** `x-max-length-bytes` on declared queues. @default none */
  readonly maxLengthBytes?: number;
  /**
   * `x-overflow` when a length limit is set. The default refuses new messages (a send then fails
   * with PublishError) instead of silently dropping old ones. @default 'reject-publish'
   */
  readonly overflow?: 'reject-publish' | 'drop-head';
  /** Stream (log) retention by age, RabbitMQ syntax: `7D`, `12h`, `30m`. @default none (kept) */
  readonly streamMaxAge?: string;
  /** Stream (log) retention by size, in bytes. @default none (kept) */
  readonly streamMaxLengthBytes?: number;
  /** Stream segment size, in bytes. @default the broker's (500 MB) */
  readonly streamMaxSegmentSizeBytes?: number;
  /** How often a log reader in a group commits its progress, in milliseconds (and always on close). @default 1000 */
  readonly commitIntervalMs?: number;
  /** How often a standby reader of a group checks whether it can take over, in milliseconds. @default 1000 */
  readonly groupTakeoverMs?: number;
  /** Largest message accepted (the broker's `max_message_size`). @default 134217728 (128 MiB) */
  readonly maxMessageBytes?: number;
}

declare module '@omnibus/core' {
  interface AdapterConfigs {
    rabbitmq: RabbitmqOptions;
  }
}

const pem = z.union([z.string().min(1), z.instanceof(Buffer)]);

const schema = z
  .object({
    heartbeat: option.int(0).max(65_535).optional(),
    noDelay: option.bool().optional(),
    connectTimeoutMs: option.ms().optional(),
    frameMax: option
      .int(4096)
      .max(2 ** 31 - 1)
      .optional(),
    channelMax: option.int(0).max(65_535).optional(),
    connectRetries: option.int(0).max(1000).optional(),
    reconnectDelayMs: option.ms().optional(),
    reconnectMaxDelayMs: option.ms().optional(),
    authMechanism: z.enum(['PLAIN', 'EXTERNAL']).optional(),
    ca: pem.optional(),
    cert: pem.optional(),
    key: pem.optional(),
    passphrase: z.string().optional(),
    caFile: z.string().min(1).optional(),
    certFile: z.string().min(1).optional(),
    keyFile: z.string().min(1).optional(),
    rejectUnauthorized: option.bool().optional(),
    servername: z.string().min(1).optional(),
    queueType: z.enum(['classic', 'quorum']).optional(),
    lazyQueues: option.bool().optional(),
    messageTtlMs: option
      .int(0)
      .max(2 ** 32 - 1)
      .optional(),
    maxLength: option.int(1).optional(),
    maxLengthBytes: option.int(1).optional(),
    overflow: z.enum(['reject-publish', 'drop-head']).optional(),
    streamMaxAge: z
      .string()
      .regex(/^[1-9][0-9]*(Y|M|D|h|m|s)$/, 'use a number and a unit: Y, M, D, h, m or s (e.g. 7D)')
      .optional(),
    streamMaxLengthBytes: option.int(1).optional(),
    streamMaxSegmentSizeBytes: option.int(1).optional(),
    commitIntervalMs: option.ms().optional(),
    groupTakeoverMs: option.ms().optional(),
    maxMessageBytes: option.int(4096).optional(),
  })
  .strict();

/** Every option name, for documentation checks. */
export const OPTION_NAMES: readonly string[] = Object.keys(schema.shape);

/** Everything the adapter needs, resolved and with defaults. */
export type Settings = ReturnType<typeof resolveSettings>;

export function resolveSettings(url: ParsedUrl, raw: Readonly<Record<string, unknown>>) {
  const o = parseOptions(ADAPTER, schema, raw);
  const issues: string[] = [];
  const tls = url.scheme === 'amqps';
  const tlsFields = [
    'ca',
    'cert',
    'key',
    'passphrase',
    'caFile',
    'certFile',
    'keyFile',
    'servername',
  ] as const;
  if (!tls) {
    for (const field of tlsFields) {
      if (o[field] !== undefined) issues.push(`${field}: TLS options need an amqps:// URL`);
    }
  }
  if (o.authMechanism === 'EXTERNAL' && !tls) issues.push('authMechanism: EXTERNAL needs an amqps:// URL');
  if (o.queueType === 'quorum' && o.lazyQueues === true) {
    issues.push('lazyQueues: quorum queues keep messages on disk already; lazy is for classic queues');
  }
  if (o.overflow !== undefined && o.maxLength === undefined && o.maxLengthBytes === undefined) {
    issues.push('overflow: only applies with maxLength or maxLengthBytes');
  }
  if (o.reconnectMaxDelayMs !== undefined && o.reconnectMaxDelayMs < (o.reconnectDelayMs ?? 100)) {
    issues.push('reconnectMaxDelayMs: must not be below reconnectDelayMs');
  }
  /** PEM material given inline or as a file name, not both. */
  const pemOf = (field: 'ca' | 'cert' | 'key'): string | Buffer | undefined => {
    const path = o[`${field}File`];
    if (path === undefined) return o[field];
    if (o[field] !== undefined) issues.push(`${field} and ${field}File: give one of them`);
    try {
      return readFileSync(path);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code ?? 'error';
      issues.push(`${field}File: cannot read "${path}" (${code})`);
      return undefined;
    }
  };
  const ca = pemOf('ca');
  const cert = pemOf('cert');
  const key = pemOf('key');
  if (issues.length > 0) throw new ConfigError(issues, { adapter: ADAPTER });

  const defaultPort = tls ? 5671 : 5672;
  const hosts = url.hosts.map((h) => ({ host: h.host, port: h.port ?? defaultPort }));
  // amqplib unescapes the vhost once more; an empty path means the default vhost "/".
  const vhost = url.path === '' ? '/' : url.path;
  const user = url.username;
  const password = url.password;
  // With EXTERNAL, amqplib takes the credentials from the socket options and ignores these.
  const auth =
    user === undefined && password === undefined ? {} : { username: user ?? '', password: password ?? '' };

  const socket: SocketOptions = {
    timeout: o.connectTimeoutMs ?? 10_000,
    noDelay: o.noDelay ?? true,
    clientProperties: { connection_name: 'omnibus' },
    ...(o.authMechanism === 'EXTERNAL' ? { credentials: credentials.external() } : {}),
    ...(tls
      ? {
          ...(ca === undefined ? {} : { ca }),
          ...(cert === undefined ? {} : { cert }),
          ...(key === undefined ? {} : { key }),
          ...(o.passphrase === undefined ? {} : { passphrase: o.passphrase }),
          ...(o.servername === undefined ? {} : { servername: o.servername }),
          rejectUnauthorized: o.rejectUnauthorized ?? true,
        }
      : {}),
  };

  const queueArguments: Record<string, unknown> = {};
  if (o.queueType === 'quorum') queueArguments['x-queue-type'] = 'quorum';
  if (o.lazyQueues === true) queueArguments['x-queue-mode'] = 'lazy';
  if (o.messageTtlMs !== undefined) queueArguments['x-message-ttl'] = o.messageTtlMs;
  if (o.maxLength !== undefined) queueArguments['x-max-length'] = o.maxLength;
  if (o.maxLengthBytes !== undefined) queueArguments['x-max-length-bytes'] = o.maxLengthBytes;
  if (o.maxLength !== undefined || o.maxLengthBytes !== undefined) {
    queueArguments['x-overflow'] = o.overflow ?? 'reject-publish';
  }

  const streamArguments: Record<string, unknown> = { 'x-queue-type': 'stream' };
  if (o.streamMaxAge !== undefined) streamArguments['x-max-age'] = o.streamMaxAge;
  if (o.streamMaxLengthBytes !== undefined) streamArguments['x-max-length-bytes'] = o.streamMaxLengthBytes;
  if (o.streamMaxSegmentSizeBytes !== undefined) {
    streamArguments['x-stream-max-segment-size-bytes'] = o.streamMaxSegmentSizeBytes;
  }

  return {
    hosts,
    tls,
    /** amqplib's connection fields for host `index` (credentials included: never log them). */
    connectFields: (index: number): AmqpOptions.Connect => {
      const host = hosts[index % hosts.length]!;
      return {
        protocol: tls ? 'amqps' : 'amqp',
        hostname: host.host,
        port: host.port,
        vhost: encodeURIComponent(vhost),
        heartbeat: o.heartbeat ?? 30,
        frameMax: o.frameMax ?? 131_072,
        channelMax: o.channelMax ?? 0,
        ...auth,
      };
    },
    socket,
    connectRetries: o.connectRetries ?? hosts.length * 2,
    reconnectDelayMs: o.reconnectDelayMs ?? 100,
    reconnectMaxDelayMs: o.reconnectMaxDelayMs ?? Math.max(5000, o.reconnectDelayMs ?? 100),
    /** Arguments of every durable queue Omnibus declares, before `x-max-priority`. */
    queueArguments: queueArguments as Readonly<Record<string, unknown>>,
    quorum: o.queueType === 'quorum',
    streamArguments: streamArguments as Readonly<Record<string, unknown>>,
    commitIntervalMs: o.commitIntervalMs ?? 1000,
    groupTakeoverMs: o.groupTakeoverMs ?? 1000,
    maxMessageBytes: o.maxMessageBytes ?? 128 * 1024 * 1024,
    /** The URL without its password, for errors and logs. */
    redacted: url.redacted,
  };
}
