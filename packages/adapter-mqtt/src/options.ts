/**
 * Options of the MQTT adapter, from the URL query (`mqtt://host?protocolVersion=4&qos=1`) or the
 * object config, validated with zod (every problem reported at once), and their translation into
 * mqtt.js connection options.
 */
import {
  ConfigError,
  hasTlsOptions,
  option,
  type ParsedUrl,
  parseOptions,
  resolveTls,
  type TlsOptions,
  tlsOptionFields,
} from '@omnibus/core';
import type { IClientOptions } from 'mqtt';
import { z } from 'zod';

/**
 * Options of the MQTT adapter. Every one can be given in the URL query or in the object config.
 * The TLS options (core's, the same on every adapter) apply to `mqtts://` and `wss://`.
 */
export interface MqttOptions extends TlsOptions {
  /** MQTT protocol: 5, or 4 for MQTT 3.1.1 (no user properties, no reason codes). @default 5 */
  readonly protocolVersion?: 4 | 5;
  /**
   * QoS of topic publishes and subscriptions. Queues always use at least QoS 1 (a queue is
   * at-least-once), and subscriptions use at most QoS 1: acknowledging after the handler is what
   * makes delivery at-least-once, and QoS 2 would hand the message over before the handler ran.
   * @default 1
   */
  readonly qos?: 0 | 1 | 2;
  /** User name; the URL's user info wins. @default none */
  readonly username?: string;
  /** Password; the URL's user info wins. Never logged. @default none */
  readonly password?: string;
  /** Keepalive interval in seconds (0 disables it). @default 60 */
  readonly keepaliveSec?: number;
  /** Prefix of every MQTT client id this adapter uses (for broker ACLs on client ids). @default '' */
  readonly clientIdPrefix?: string;
  /** MQTT topic under which queue `q` lives as `<queuePrefix>/q`. @default 'omnibus/queue' */
  readonly queuePrefix?: string;
  /** Session expiry (MQTT 5) of durable subscriptions, queue consumers and queue holders, in seconds. @default 604800 */
  readonly sessionExpirySec?: number;
  /**
   * How often a queue consumer looks for a holder session that took messages while consumers were
   * live (see README), in ms; 0 disables the check. @default 5000
   */
  readonly holderCheckMs?: number;
  /** Publishes awaiting their PUBACK at once (further bounded by the broker's receive maximum). @default 256 */
  readonly maxInflight?: number;
  /** Publishes waiting for a free in-flight slot; beyond it a send fails with CapacityError. @default 10000 */
  readonly maxPendingPublishes?: number;
  /**
   * MQTT 3.1.1 only: wrap id, key, timestamp and headers into the payload of topic messages, so
   * headers travel (only Omnibus clients can read such payloads). Queue messages always carry this
   * envelope on 3.1.1: queues live in Omnibus's own topic space. @default false
   */
  readonly envelope?: boolean;
  /** Delay between reconnection attempts, in ms. @default 1000 */
  readonly reconnectPeriodMs?: number;
  /** How long the first connection may take, in ms. @default 10000 */
  readonly connectTimeoutMs?: number;
}

declare module '@omnibus/core' {
  interface AdapterConfigs {
    mqtt: MqttOptions;
  }
}

const topicPrefix = z
  .string()
  .min(1)
  .max(1000)
  .refine((s) => !/[+#]|^[/$]|\/$/.test(s) && !s.includes('\u0000'), {
    message: 'must be an MQTT topic without "+", "#", NUL, a leading "$" or a leading/trailing "/"',
  });

const schema = z
  .object({
    protocolVersion: z.coerce
      .number()
      .pipe(z.literal([4, 5], { error: 'must be 5 (MQTT 5) or 4 (MQTT 3.1.1)' }))
      .default(5),
    qos: z.coerce
      .number()
      .pipe(z.literal([0, 1, 2], { error: 'must be 0, 1 or 2' }))
      .default(1),
    username: z.string().optional(),
    password: z.string().optional(),
    keepaliveSec: option.int(0).max(65535).default(60),
    clientIdPrefix: z
      .string()
      .max(100)
      .regex(/^[A-Za-z0-9._:-]*$/, 'use letters, digits, ".", "_", ":" and "-"')
      .default(''),
    queuePrefix: topicPrefix.default('omnibus/queue'),
    sessionExpirySec: option.int(1).max(0xffffffff).default(604_800),
    holderCheckMs: option.int(0).default(5000),
    maxInflight: option.int(1).max(65535).default(256),
    maxPendingPublishes: option.int(0).default(10_000),
    envelope: option.bool().default(false),
    reconnectPeriodMs: option.int(1).default(1000),
    connectTimeoutMs: option.int(1).default(10_000),
    ...tlsOptionFields,
  })
  .strict();

/** Options with every default applied, and the mqtt.js options every connection shares (`base`). */
export type ResolvedOptions = Required<Omit<MqttOptions, 'username' | 'password' | keyof TlsOptions>> & {
  readonly base: IClientOptions;
};

export function resolveOptions(
  url: ParsedUrl,
  defaults: MqttOptions,
  raw: Record<string, unknown>,
): ResolvedOptions {
  const o = parseOptions('mqtt', schema, { ...defaults, ...raw });
  const tlsOptions: TlsOptions = o;
  if (o.protocolVersion === 5 && o.envelope) {
    throw new ConfigError('envelope: only for protocolVersion 4; MQTT 5 carries headers as user properties', {
      adapter: 'mqtt',
    });
  }
  const protocol = url.scheme as 'mqtt' | 'mqtts' | 'ws' | 'wss';
  const secure = protocol === 'mqtts' || protocol === 'wss';
  if (!secure && hasTlsOptions(tlsOptions)) {
    throw new ConfigError(`TLS options need an mqtts:// or wss:// URL, got ${url.scheme}://`, {
      adapter: 'mqtt',
    });
  }
  // Node's `ConnectionOptions` and mqtt.js's TLS fields differ only in `| undefined`.
  const tls: IClientOptions = secure ? (resolveTls('mqtt', tlsOptions) as IClientOptions) : {};
  // mqtt.js hands `ws` only ca, cert, key, passphrase and rejectUnauthorized; `ws` passes the rest of
  // its options on to `tls.connect`, so SNI for wss:// goes there (its types do not list it).
  if (protocol === 'wss' && tls.servername !== undefined) {
    tls.wsOptions = { servername: tls.servername } as NonNullable<IClientOptions['wsOptions']>;
  }
  const defaultPort = { mqtt: 1883, mqtts: 8883, ws: 80, wss: 443 }[protocol];
  const servers = url.hosts.map((h) => ({ host: h.host, port: h.port ?? defaultPort, protocol }));
  const username = url.username ?? o.username;
  const password = url.password ?? o.password;
  const base: IClientOptions = {
    protocol,
    host: servers[0]!.host,
    port: servers[0]!.port,
    ...(servers.length > 1 ? { servers } : {}),
    ...(protocol === 'ws' || protocol === 'wss' ? { path: `/${url.path || 'mqtt'}` } : {}),
    ...(username === undefined ? {} : { username }),
    ...(password === undefined ? {} : { password }),
    protocolVersion: o.protocolVersion,
    keepalive: o.keepaliveSec,
    reconnectPeriod: o.reconnectPeriodMs,
    connectTimeout: o.connectTimeoutMs,
    // Core buffers sends during an outage (bounded); mqtt.js's own offline queue is unbounded.
    queueQoSZero: false,
    ...tls,
  };
  return { ...o, base };
}
