/**
 * Options of the MQTT adapter, from the URL query (`mqtt://host?protocolVersion=4&qos=1`) or the
 * object config, validated with zod (every problem reported at once), and their translation into
 * mqtt.js connection options.
 */
import { type OptionsOf, option, type ParsedUrl, readOptions, tlsOptions } from '@omnibus/core';
import type { IClientOptions } from 'mqtt';
import { z } from 'zod';

const spec = {
  /** MQTT protocol: 5, or 4 for MQTT 3.1.1 (no user properties, no reason codes). @default 5 */
  protocolVersion: option.oneOf([4, 5], 5),
  /**
   * QoS of topic publishes and subscriptions. Queues always use at least QoS 1 (a queue is
   * at-least-once), and subscriptions use at most QoS 1: acknowledging after the handler is what
   * makes delivery at-least-once, and QoS 2 would hand the message over before the handler ran.
   * @default 1
   */
  qos: option.oneOf([0, 1, 2], 1),
  /** User name; the URL's user info wins. @default none */
  username: option.string({ min: 0 }),
  /** Password; the URL's user info wins. Never logged. @default none */
  password: option.string({ min: 0 }),
  /** Keepalive interval in seconds (0 disables it). @default 60 */
  keepaliveSec: option.int({ max: 65535, default: 60 }),
  /** Prefix of every MQTT client id this adapter uses (for broker ACLs on client ids). @default '' */
  clientIdPrefix: option.string({
    min: 0,
    max: 100,
    pattern: [/^[A-Za-z0-9._:-]*$/, 'use letters, digits, ".", "_", ":" and "-"'],
    default: '',
  }),
  /** MQTT topic under which queue `q` lives as `<queuePrefix>/q`. @default 'omnibus/queue' */
  queuePrefix: option.of(
    z
      .string()
      .min(1)
      .max(1000)
      .refine((s) => !/[+#]|^[/$]|\/$/.test(s) && !s.includes('\u0000'), {
        message: 'must be an MQTT topic without "+", "#", NUL, a leading "$" or a leading/trailing "/"',
      }),
    'omnibus/queue',
  ),
  /** Session expiry (MQTT 5) of durable subscriptions, queue consumers and queue holders, in seconds. @default 604800 */
  sessionExpirySec: option.int({ min: 1, max: 0xffffffff, default: 604_800 }),
  /**
   * How often a queue consumer looks for a holder session that took messages while consumers were
   * live (see README), in ms; 0 disables the check. @default 5000
   */
  holderCheckMs: option.int({ default: 5000 }),
  /** Publishes awaiting their PUBACK at once (further bounded by the broker's receive maximum). @default 256 */
  maxInflight: option.int({ min: 1, max: 65535, default: 256 }),
  /** Publishes waiting for a free in-flight slot; beyond it a send fails with CapacityError. @default 10000 */
  maxPendingPublishes: option.int({ default: 10_000 }),
  /**
   * MQTT 3.1.1 only: wrap id, key, timestamp and headers into the payload of topic messages, so
   * headers travel (only Omnibus clients can read such payloads). Queue messages always carry this
   * envelope on 3.1.1: queues live in Omnibus's own topic space. @default false
   */
  envelope: option.bool(false),
  /** Delay between reconnection attempts, in ms. @default 1000 */
  reconnectPeriodMs: option.int({ min: 1, default: 1000 }),
  /** How long the first connection may take, in ms. @default 10000 */
  connectTimeoutMs: option.int({ min: 1, default: 10_000 }),
  ...tlsOptions,
};

/**
 * Options of the MQTT adapter. Every one can be given in the URL query or in the object config.
 * The TLS options (core's, the same on every adapter) apply to `mqtts://` and `wss://`.
 */
export type MqttOptions = OptionsOf<typeof spec>;

declare module '@omnibus/core' {
  interface AdapterConfigs {
    mqtt: MqttOptions;
  }
}

/** Every option name, for the README check. */
export const OPTION_NAMES = Object.keys(spec);

const noLog = (): void => undefined;

/** Options with every default applied, and the mqtt.js options every connection shares (`base`). */
export type ResolvedOptions = ReturnType<typeof resolveOptions>;

export function resolveOptions(url: ParsedUrl, defaults: MqttOptions, raw: Record<string, unknown>) {
  const protocol = url.scheme as 'mqtt' | 'mqtts' | 'ws' | 'wss';
  const { options: o, tls: secure } = readOptions(
    'mqtt',
    spec,
    { ...defaults, ...raw },
    {
      tls: { on: protocol === 'mqtts' || protocol === 'wss', needs: 'an mqtts:// or wss:// URL' },
      check: (o) => [
        o.protocolVersion === 5 &&
          o.envelope &&
          'envelope: only for protocolVersion 4; MQTT 5 carries headers as user properties',
      ],
    },
  );
  // Node's `ConnectionOptions` and mqtt.js's TLS fields differ only in `| undefined`.
  const tls = (secure ?? {}) as IClientOptions;
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
    // mqtt.js logs every packet through `debug` (several calls per message, a few per cent of the
    // CPU even when nothing is printed); with DEBUG set, its logging stays as it was.
    ...(process.env.DEBUG ? {} : { log: noLog }),
    ...tls,
  };
  return { ...o, base };
}
