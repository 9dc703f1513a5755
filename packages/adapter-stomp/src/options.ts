/** The adapter's options: validated with zod from the URL query and the object config alike. */
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
import { z } from 'zod';

/** Which broker family decides destinations and capabilities. `auto` reads CONNECTED's `server` header. */
export type ProfileChoice = 'auto' | 'rabbitmq' | 'activemq' | 'generic';

/** Options of the STOMP adapter (`stomp://user:pass@host:61613/vhost?heartbeatMs=10000`), and core's TLS options. */
export interface StompOptions extends TlsOptions {
  /** STOMP `login`; the URL's user name is used when not set. @default the URL's user name */
  readonly login?: string;
  /** STOMP `passcode`; the URL's password is used when not set. @default the URL's password */
  readonly passcode?: string;
  /** The CONNECT `host` header: RabbitMQ's virtual host; ActiveMQ ignores it. @default the URL path, else `/` */
  readonly vhost?: string;
  /** Heart-beat interval both ways in ms; `0` turns heart-beating off. @default 10000 */
  readonly heartbeatMs?: number;
  /** TLS on a `stomp://` URL (`stomp+ssl://` always uses it). @default false */
  readonly tls?: boolean;
  /** Bound on one connection attempt (TCP, TLS and CONNECTED). @default 10000 */
  readonly connectTimeoutMs?: number;
  /** First delay before reconnecting after the connection is lost; doubles up to `maxReconnectDelayMs`. @default 100 */
  readonly reconnectDelayMs?: number;
  /** Longest delay between reconnection attempts. @default 5000 */
  readonly maxReconnectDelayMs?: number;
  /** Bound on a SUBSCRIBE receipt and on reading an appended message's position. @default 10000 */
  readonly operationTimeoutMs?: number;
  /** Broker family; `auto` resolves it from CONNECTED's `server` header. @default 'auto' */
  readonly profile?: ProfileChoice;
  /**
   * ActiveMQ delayed delivery (`AMQ_SCHEDULED_DELAY`): `auto` probes once per broker whether the
   * scheduler is on; `native` trusts that it is; `none` never uses it. @default 'auto'
   */
  readonly delay?: 'auto' | 'native' | 'none';
}

/** The options resolved: defaults applied, merged with the URL (its password only in `passcode`). */
export type StompSettings = ReturnType<typeof resolveSettings>;

export const optionsSchema = z
  .object({
    login: z.string().min(1).optional(),
    passcode: z.string().optional(),
    vhost: z.string().min(1).optional(),
    heartbeatMs: option.int(0).max(3_600_000).optional(),
    tls: option.bool().optional(),
    ...tlsOptionFields,
    connectTimeoutMs: option.ms().optional(),
    reconnectDelayMs: option.ms().optional(),
    maxReconnectDelayMs: option.ms().optional(),
    operationTimeoutMs: option.ms().optional(),
    profile: z.enum(['auto', 'rabbitmq', 'activemq', 'generic']).optional(),
    delay: z.enum(['auto', 'native', 'none']).optional(),
  })
  .strict();

/** Validates the options (every problem at once) and merges them with the URL. */
export function resolveSettings(url: ParsedUrl, raw: Readonly<Record<string, unknown>>) {
  const o = parseOptions('stomp', optionsSchema, raw);
  const secure = url.scheme === 'stomp+ssl' || o.tls === true;
  const tlsOptions: TlsOptions = o;
  // Certificates given to a plain connection would be ignored without a word.
  if (!secure && hasTlsOptions(tlsOptions)) {
    throw new ConfigError('TLS options are set but TLS is off: use stomp+ssl:// or tls=true', {
      adapter: 'stomp',
    });
  }
  const reconnectDelayMs = o.reconnectDelayMs ?? 100;
  return {
    hosts: url.hosts,
    login: o.login ?? url.username,
    passcode: o.passcode ?? url.password,
    vhost: o.vhost ?? (url.path === '' ? '/' : url.path),
    heartbeatMs: o.heartbeatMs ?? 10_000,
    tls: secure ? resolveTls('stomp', tlsOptions) : undefined,
    connectTimeoutMs: o.connectTimeoutMs ?? 10_000,
    reconnectDelayMs,
    maxReconnectDelayMs: Math.max(o.maxReconnectDelayMs ?? 5_000, reconnectDelayMs),
    operationTimeoutMs: o.operationTimeoutMs ?? 10_000,
    profile: o.profile ?? 'auto',
    delay: o.delay ?? 'auto',
    redacted: url.redacted,
  };
}
