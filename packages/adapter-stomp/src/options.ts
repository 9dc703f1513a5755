/** The adapter's options: validated with zod from the URL query and the object config alike. */
import type { ConnectionOptions as TlsConnectionOptions } from 'node:tls';
import { ConfigError, type HostPort, option, type ParsedUrl, parseOptions } from '@omnibus/core';
import { z } from 'zod';

/** Which broker family decides destinations and capabilities. `auto` reads CONNECTED's `server` header. */
export type ProfileChoice = 'auto' | 'rabbitmq' | 'activemq' | 'generic';

/** Options of the STOMP adapter (`stomp://user:pass@host:61613/vhost?heartbeatMs=10000`). */
export interface StompOptions {
  /** STOMP `login`; the URL's user name is used when not set. @default the URL's user name */
  readonly login?: string;
  /** STOMP `passcode`; the URL's password is used when not set. @default the URL's password */
  readonly passcode?: string;
  /** The CONNECT `host` header: RabbitMQ's virtual host; ActiveMQ ignores it. @default the URL path, else `/` */
  readonly vhost?: string;
  /** Heart-beat interval both ways in ms; `0` turns heart-beating off. @default 10000 */
  readonly heartbeatMs?: number;
  /** TLS: `true`, or Node TLS options (ca, cert, key, servername…). `stomp+ssl://` turns it on. @default false */
  readonly tls?: boolean | TlsConnectionOptions;
  /** Bound on one connection attempt (TCP, TLS and CONNECTED). @default 10000 */
  readonly connectTimeoutMs?: number;
  /** First delay before reconnecting after the connection is lost; doubles up to `maxReconnectDelayMs`. @default 100 */
  readonly reconnectDelayMs?: number;
  /** Longest delay between reconnection attempts. @default 5000 */
  readonly maxReconnectDelayMs?: number;
  /** Bound on a SUBSCRIBE/UNSUBSCRIBE receipt and on reading an appended message's position. @default 10000 */
  readonly operationTimeoutMs?: number;
  /** Broker family; `auto` resolves it from CONNECTED's `server` header. @default 'auto' */
  readonly profile?: ProfileChoice;
  /**
   * ActiveMQ delayed delivery (`AMQ_SCHEDULED_DELAY`): `auto` probes once per broker whether the
   * scheduler is on; `native` trusts that it is; `none` never uses it. @default 'auto'
   */
  readonly delay?: 'auto' | 'native' | 'none';
}

/** The options resolved: defaults applied, merged with the URL. */
export interface StompSettings extends Required<Omit<StompOptions, 'login' | 'passcode' | 'tls'>> {
  readonly hosts: readonly HostPort[];
  readonly login: string | undefined;
  readonly passcode: string | undefined;
  readonly tls: TlsConnectionOptions | undefined;
  /** For errors and logs: the URL without its password. */
  readonly redacted: string;
}

const schema = z
  .object({
    login: z.string().min(1).optional(),
    passcode: z.string().optional(),
    vhost: z.string().min(1).optional(),
    heartbeatMs: option.int(0).max(3_600_000).optional(),
    tls: z
      .union([
        option.bool(),
        z.custom<TlsConnectionOptions>(
          (v) => typeof v === 'object' && v !== null && !Array.isArray(v),
          'expected true, false or Node TLS options',
        ),
      ])
      .optional(),
    connectTimeoutMs: option.ms().optional(),
    reconnectDelayMs: option.ms().optional(),
    maxReconnectDelayMs: option.ms().optional(),
    operationTimeoutMs: option.ms().optional(),
    profile: z.enum(['auto', 'rabbitmq', 'activemq', 'generic']).optional(),
    delay: z.enum(['auto', 'native', 'none']).optional(),
  })
  .strict();

export const DEFAULT_PORT = 61613;

/** Validates the options (every problem at once) and merges them with the URL. */
export function resolveSettings(url: ParsedUrl, raw: Readonly<Record<string, unknown>>): StompSettings {
  const o = parseOptions('stomp', schema, raw);
  const secure = url.scheme === 'stomp+ssl' || url.scheme === 'stomps';
  const tls =
    o.tls === undefined || o.tls === false ? (secure ? {} : undefined) : o.tls === true ? {} : o.tls;
  if (url.hosts.length === 0) throw new ConfigError(`"${url.redacted}" has no host`, { adapter: 'stomp' });
  const reconnectDelayMs = o.reconnectDelayMs ?? 100;
  return {
    hosts: url.hosts,
    login: o.login ?? url.username,
    passcode: o.passcode ?? url.password,
    vhost: o.vhost ?? (url.path === '' ? '/' : url.path),
    heartbeatMs: o.heartbeatMs ?? 10_000,
    tls,
    connectTimeoutMs: o.connectTimeoutMs ?? 10_000,
    reconnectDelayMs,
    maxReconnectDelayMs: Math.max(o.maxReconnectDelayMs ?? 5_000, reconnectDelayMs),
    operationTimeoutMs: o.operationTimeoutMs ?? 10_000,
    profile: o.profile ?? 'auto',
    delay: o.delay ?? 'auto',
    redacted: url.redacted,
  };
}
