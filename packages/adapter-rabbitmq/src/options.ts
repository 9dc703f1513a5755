/**
 * Options of the RabbitMQ adapter, their spec (URL query and object form alike), and how they
 * become amqplib's connection settings. Defaults are in the spec; the URL decides hosts,
 * credentials and the vhost.
 */
import { type OptionsOf, option, type ParsedUrl, readOptions, tlsOptions } from '@omnibus/core';
import type { Options as AmqpOptions, SocketOptions } from 'amqplib';
import { credentials } from 'amqplib';

export const ADAPTER = 'rabbitmq';

const spec = {
  /** Heartbeat interval in seconds; `0` turns heartbeats off. @default 30 */
  heartbeat: option.int({ max: 65_535, default: 30 }),
  /**
   * TCP_NODELAY: small frames (acks, publishes awaiting a confirm) leave at once. Off, the kernel
   * batches them (Nagle): a little less CPU under load, but a lone frame can wait ~40 ms for a
   * delayed ACK — measured here: a sequential log append took 47 ms instead of 0.7 ms. @default true
   */
  noDelay: option.bool(true),
  /**
   * Write the frames amqplib has queued in one pass to the socket at once (one `writev`) instead of
   * one system call per frame (see src/writes.ts; it reaches into amqplib's connection, and does
   * nothing on an amqplib whose internals differ). @default true
   */
  coalesceWrites: option.bool(true),
  /** Bound on one TCP + AMQP handshake attempt, in milliseconds. @default 10000 */
  connectTimeoutMs: option.ms(10_000),
  /** Largest frame the client accepts, in bytes (negotiated with the broker). @default 131072 */
  frameMax: option.int({ min: 4096, max: 2 ** 31 - 1, default: 131_072 }),
  /** Most channels on the connection; `0` takes the broker's limit. @default 0 */
  channelMax: option.int({ max: 65_535, default: 0 }),
  /** Failed attempts at start-up before `connect` gives up (hosts are tried in turn). @default twice the number of hosts */
  connectRetries: option.int({ max: 1000 }),
  /** First reconnection delay after a lost connection, in milliseconds. @default 100 */
  reconnectDelayMs: option.ms(100),
  /** Longest reconnection delay (exponential backoff with jitter), in milliseconds. @default 5000 (or reconnectDelayMs if larger) */
  reconnectMaxDelayMs: option.ms(),
  /** `PLAIN` (user and password from the URL) or `EXTERNAL` (the TLS client certificate). @default 'PLAIN' */
  authMechanism: option.oneOf(['PLAIN', 'EXTERNAL'], 'PLAIN'),
  ...tlsOptions,
  /** Type of the queues Omnibus declares (work queues, dead-letter queues, durable subscriptions). @default 'classic' */
  queueType: option.oneOf(['classic', 'quorum'], 'classic'),
  /** Declare classic queues lazy (`x-queue-mode: lazy`: messages go to disk early). @default false */
  lazyQueues: option.bool(false),
  /** `x-message-ttl` on declared queues: messages older than this are dropped by the broker. @default none */
  messageTtlMs: option.int({ max: 2 ** 32 - 1 }),
  /** `x-max-length` on declared queues. @default none */
  maxLength: option.int({ min: 1 }),
  /** `x-max-length-bytes` on declared queues. @default none */
  maxLengthBytes: option.int({ min: 1 }),
  /**
   * `x-overflow` when a length limit is set. The default refuses new messages (a send then fails
   * with PublishError) instead of silently dropping old ones. @default 'reject-publish'
   */
  overflow: option.oneOf(['reject-publish', 'drop-head']),
  /** Stream (log) retention by age, RabbitMQ syntax: `7D`, `12h`, `30m`. @default none (kept) */
  streamMaxAge: option.string({
    pattern: [/^[1-9][0-9]*(Y|M|D|h|m|s)$/, 'use a number and a unit: Y, M, D, h, m or s (e.g. 7D)'],
  }),
  /** Stream (log) retention by size, in bytes. @default none (kept) */
  streamMaxLengthBytes: option.int({ min: 1 }),
  /** Stream segment size, in bytes. @default the broker's (500 MB) */
  streamMaxSegmentSizeBytes: option.int({ min: 1 }),
  /** How often a log reader in a group commits its progress, in milliseconds (and always on close). @default 1000 */
  commitIntervalMs: option.ms(1000),
  /** How often a standby reader of a group checks whether it can take over, in milliseconds. @default 1000 */
  groupTakeoverMs: option.ms(1000),
  /** Largest message accepted (the broker's `max_message_size`). @default 134217728 (128 MiB) */
  maxMessageBytes: option.int({ min: 4096, default: 128 * 1024 * 1024 }),
};

/**
 * Options of the RabbitMQ adapter: in the URL query (`amqp://host?heartbeat=10`) or the object config.
 * The TLS options (core's, the same on every adapter) need an amqps:// URL.
 */
export type RabbitmqOptions = OptionsOf<typeof spec>;

declare module '@omnibus/core' {
  interface AdapterConfigs {
    rabbitmq: RabbitmqOptions;
  }
}

/** Every option name, for documentation checks. */
export const OPTION_NAMES: readonly string[] = Object.keys(spec);

/** Everything the adapter needs, resolved and with defaults. */
export type Settings = ReturnType<typeof resolveSettings>;

export function resolveSettings(url: ParsedUrl, raw: Readonly<Record<string, unknown>>) {
  const tls = url.scheme === 'amqps';
  const limited = (o: { maxLength?: number | undefined; maxLengthBytes?: number | undefined }) =>
    o.maxLength !== undefined || o.maxLengthBytes !== undefined;
  const { options: o, tls: tlsSocket } = readOptions(ADAPTER, spec, raw, {
    tls: { on: tls, needs: 'an amqps:// URL' },
    check: (o) => [
      !tls && o.authMechanism === 'EXTERNAL' && 'authMechanism: EXTERNAL needs an amqps:// URL',
      o.queueType === 'quorum' &&
        o.lazyQueues &&
        'lazyQueues: quorum queues keep messages on disk already; lazy is for classic queues',
      o.overflow !== undefined && !limited(o) && 'overflow: only applies with maxLength or maxLengthBytes',
      o.reconnectMaxDelayMs !== undefined &&
        o.reconnectMaxDelayMs < o.reconnectDelayMs &&
        'reconnectMaxDelayMs: must not be below reconnectDelayMs',
    ],
  });

  const hosts = url.hosts.map((h) => ({ host: h.host, port: h.port ?? (tls ? 5671 : 5672) }));
  // amqplib unescapes the vhost once more; an empty path means the default vhost "/".
  const vhost = encodeURIComponent(url.path === '' ? '/' : url.path);
  // With EXTERNAL, amqplib takes the credentials from the socket options and ignores these.
  const auth =
    url.username === undefined && url.password === undefined
      ? {}
      : { username: url.username ?? '', password: url.password ?? '' };

  const socket: SocketOptions = {
    ...tlsSocket,
    timeout: o.connectTimeoutMs,
    noDelay: o.noDelay,
    ...(o.authMechanism === 'EXTERNAL' ? { credentials: credentials.external() } : {}),
  };

  const quorum = o.queueType === 'quorum';
  const queueArguments = definedOnly({
    'x-queue-type': quorum ? 'quorum' : undefined,
    'x-queue-mode': o.lazyQueues ? 'lazy' : undefined,
    'x-message-ttl': o.messageTtlMs,
    'x-max-length': o.maxLength,
    'x-max-length-bytes': o.maxLengthBytes,
    'x-overflow': limited(o) ? (o.overflow ?? 'reject-publish') : undefined,
  });
  const streamArguments = definedOnly({
    'x-queue-type': 'stream',
    'x-max-age': o.streamMaxAge,
    'x-max-length-bytes': o.streamMaxLengthBytes,
    'x-stream-max-segment-size-bytes': o.streamMaxSegmentSizeBytes,
  });

  return {
    hosts,
    /** amqplib's connection fields for host `index` (credentials included: never log them). */
    connectFields: (index: number): AmqpOptions.Connect => {
      const host = hosts[index % hosts.length]!;
      return {
        protocol: tls ? 'amqps' : 'amqp',
        hostname: host.host,
        port: host.port,
        vhost,
        heartbeat: o.heartbeat,
        frameMax: o.frameMax,
        channelMax: o.channelMax,
        ...auth,
      };
    },
    socket,
    coalesceWrites: o.coalesceWrites,
    connectRetries: o.connectRetries ?? hosts.length * 2,
    reconnectDelayMs: o.reconnectDelayMs,
    reconnectMaxDelayMs: o.reconnectMaxDelayMs ?? Math.max(5000, o.reconnectDelayMs),
    /** Arguments of every durable queue Omnibus declares, before `x-max-priority`. */
    queueArguments,
    quorum,
    streamArguments,
    commitIntervalMs: o.commitIntervalMs,
    groupTakeoverMs: o.groupTakeoverMs,
    maxMessageBytes: o.maxMessageBytes,
    /** The URL without its password, for errors and logs. */
    redacted: url.redacted,
  };
}

/** The entries whose value is set: declaration arguments of the options given. */
function definedOnly(entries: Record<string, unknown>): Readonly<Record<string, unknown>> {
  return Object.fromEntries(Object.entries(entries).filter(([, value]) => value !== undefined));
}
