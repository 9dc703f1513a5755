/**
 * Options of the MQTT adapter, from the URL query (`mqtt://host?protocolVersion=4&qos=1`) or the
 * object config, validated with zod (every problem reported at once), and their translation into
 * mqtt.js connection options.
 */
import { readFileSync } from 'node:fs';
import { ConfigError, option, type ParsedUrl, parseOptions } from '@omnibus/core';
import type { IClientOptions } from 'mqtt';
import { z } from 'zod';

/** Options of the MQTT adapter. Every one can be given in the URL query or in the object config. */
export interface MqttOptions {
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
  /** TLS (`mqtts://`, `wss://`): PEM file of the CA to trust. @default the system's CAs */
  readonly tlsCaFile?: string;
  /** TLS client certificate, a PEM file. @default none */
  readonly tlsCertFile?: string;
  /** TLS client key, a PEM file. @default none */
  readonly tlsKeyFile?: string;
  /** Verify the broker's certificate. @default true */
  readonly tlsRejectUnauthorized?: boolean;
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
  .refine(
    (s) =>
      !/[+#]/.test(s) &&
      !s.includes('\u0000') &&
      !s.startsWith('/') &&
      !s.endsWith('/') &&
      !s.startsWith('$'),
    {
      message: 'must be an MQTT topic without "+", "#", NUL, a leading "$" or a leading/trailing "/"',
    },
  );

const schema = z
  .object({
    protocolVersion: z.coerce
      .number()
      .refine((v) => v === 4 || v === 5, { message: 'must be 5 (MQTT 5) or 4 (MQTT 3.1.1)' })
      .optional(),
    qos: z.coerce
      .number()
      .refine((v) => v === 0 || v === 1 || v === 2, { message: 'must be 0, 1 or 2' })
      .optional(),
    username: z.string().optional(),
    password: z.string().optional(),
    keepaliveSec: option.int(0).max(65535).optional(),
    clientIdPrefix: z
      .string()
      .max(100)
      .regex(/^[A-Za-z0-9._:-]*$/, 'use letters, digits, ".", "_", ":" and "-"')
      .optional(),
    queuePrefix: topicPrefix.optional(),
    sessionExpirySec: option.int(1).max(0xffffffff).optional(),
    holderCheckMs: option.int(0).optional(),
    maxInflight: option.int(1).max(65535).optional(),
    maxPendingPublishes: option.int(0).optional(),
    envelope: option.bool().optional(),
    reconnectPeriodMs: option.int(1).optional(),
    connectTimeoutMs: option.int(1).optional(),
    tlsCaFile: z.string().min(1).optional(),
    tlsCertFile: z.string().min(1).optional(),
    tlsKeyFile: z.string().min(1).optional(),
    tlsRejectUnauthorized: option.bool().optional(),
  })
  .strict();

/** Options with every default applied, and the mqtt.js options every connection shares (`base`). */
export type ResolvedOptions = Required<
  Omit<
    MqttOptions,
    'username' | 'password' | 'tlsCaFile' | 'tlsCertFile' | 'tlsKeyFile' | 'tlsRejectUnauthorized'
  >
> & { readonly base: IClientOptions };

export function resolveOptions(
  url: ParsedUrl,
  defaults: MqttOptions,
  raw: Record<string, unknown>,
): ResolvedOptions {
  const o = parseOptions('mqtt', schema, { ...defaults, ...raw });
  const protocolVersion = (o.protocolVersion ?? 5) as 4 | 5;
  if (protocolVersion === 5 && o.envelope === true) {
    throw new ConfigError('envelope: only for protocolVersion 4; MQTT 5 carries headers as user properties', {
      adapter: 'mqtt',
    });
  }
  const secure = url.scheme === 'mqtts' || url.scheme === 'wss';
  const protocol = url.scheme as 'mqtt' | 'mqtts' | 'ws' | 'wss';
  const defaultPort = { mqtt: 1883, mqtts: 8883, ws: 80, wss: 443 }[protocol];
  const tls: Record<string, unknown> = {};
  if (secure) {
    const issues: string[] = [];
    const files = {
      ca: ['tlsCaFile', o.tlsCaFile],
      cert: ['tlsCertFile', o.tlsCertFile],
      key: ['tlsKeyFile', o.tlsKeyFile],
    };
    for (const [field, [name, file]] of Object.entries(files)) {
      if (file === undefined) continue;
      try {
        tls[field] = readFileSync(file);
      } catch (error) {
        issues.push(`${name}: cannot read "${file}" (${(error as NodeJS.ErrnoException).code ?? 'error'})`);
      }
    }
    if (issues.length > 0) throw new ConfigError(issues, { adapter: 'mqtt' });
    tls.rejectUnauthorized = o.tlsRejectUnauthorized ?? true;
  } else if (o.tlsCaFile ?? o.tlsCertFile ?? o.tlsKeyFile ?? o.tlsRejectUnauthorized) {
    throw new ConfigError(`TLS options need an mqtts:// or wss:// URL, got ${url.scheme}://`, {
      adapter: 'mqtt',
    });
  }
  const username = url.username ?? o.username;
  const password = url.password ?? o.password;
  const servers = url.hosts.map((h) => ({ host: h.host, port: h.port ?? defaultPort, protocol }));
  const first = servers[0]!;
  const resolved = {
    protocolVersion,
    qos: (o.qos ?? 1) as 0 | 1 | 2,
    keepaliveSec: o.keepaliveSec ?? 60,
    clientIdPrefix: o.clientIdPrefix ?? '',
    queuePrefix: o.queuePrefix ?? 'omnibus/queue',
    sessionExpirySec: o.sessionExpirySec ?? 604_800,
    holderCheckMs: o.holderCheckMs ?? 5000,
    maxInflight: o.maxInflight ?? 256,
    maxPendingPublishes: o.maxPendingPublishes ?? 10_000,
    envelope: o.envelope ?? false,
    reconnectPeriodMs: o.reconnectPeriodMs ?? 1000,
    connectTimeoutMs: o.connectTimeoutMs ?? 10_000,
  };
  const base: IClientOptions = {
    protocol,
    host: first.host,
    port: first.port,
    ...(servers.length > 1 ? { servers } : {}),
    ...(protocol === 'ws' || protocol === 'wss' ? { path: `/${url.path || 'mqtt'}` } : {}),
    ...(username === undefined ? {} : { username }),
    ...(password === undefined ? {} : { password }),
    protocolVersion,
    keepalive: resolved.keepaliveSec,
    reconnectPeriod: resolved.reconnectPeriodMs,
    connectTimeout: resolved.connectTimeoutMs,
    // Core buffers sends during an outage (bounded); mqtt.js's own offline queue is unbounded.
    queueQoSZero: false,
    ...tls,
  };
  return { ...resolved, base };
}
