/** The adapter's options: a spec read by core from the URL query and the object config alike. */
import { type OptionsOf, option, type ParsedUrl, readOptions, tlsOptions } from '@omnibus/core';

const spec = {
  /** STOMP `login`; the URL's user name is used when not set. @default the URL's user name */
  login: option.string(),
  /** STOMP `passcode`; the URL's password is used when not set. @default the URL's password */
  passcode: option.string({ min: 0 }),
  /** The CONNECT `host` header: RabbitMQ's virtual host; ActiveMQ ignores it. @default the URL path, else `/` */
  vhost: option.string(),
  /** Heart-beat interval both ways in ms; `0` turns heart-beating off. @default 10000 */
  heartbeatMs: option.int({ max: 3_600_000, default: 10_000 }),
  /** TLS on a `stomp://` URL (`stomp+ssl://` always uses it). @default false */
  tls: option.bool(false),
  ...tlsOptions,
  /** Bound on one connection attempt (TCP, TLS and CONNECTED). @default 10000 */
  connectTimeoutMs: option.ms(10_000),
  /** First delay before reconnecting after the connection is lost; doubles up to `maxReconnectDelayMs`. @default 100 */
  reconnectDelayMs: option.ms(100),
  /** Longest delay between reconnection attempts. @default 5000 */
  maxReconnectDelayMs: option.ms(5000),
  /** Bound on a SUBSCRIBE receipt and on reading an appended message's position. @default 10000 */
  operationTimeoutMs: option.ms(10_000),
  /** Broker family; `auto` resolves it from CONNECTED's `server` header. @default 'auto' */
  profile: option.oneOf(['auto', 'rabbitmq', 'activemq', 'generic'], 'auto'),
  /**
   * ActiveMQ delayed delivery (`AMQ_SCHEDULED_DELAY`): `auto` probes once per broker whether the
   * scheduler is on; `native` trusts that it is; `none` never uses it. @default 'auto'
   */
  delay: option.oneOf(['auto', 'native', 'none'], 'auto'),
};

/** Options of the STOMP adapter (`stomp://user:pass@host:61613/vhost?heartbeatMs=10000`), and core's TLS options. */
export type StompOptions = OptionsOf<typeof spec>;

/** Which broker family decides destinations and capabilities. `auto` reads CONNECTED's `server` header. */
export type ProfileChoice = NonNullable<StompOptions['profile']>;

/** Every option name, for the README check. */
export const OPTION_NAMES = Object.keys(spec);

/** The options resolved: defaults applied, merged with the URL (its password only in `passcode`). */
export type StompSettings = ReturnType<typeof resolveSettings>;

/** Validates the options (every problem at once) and merges them with the URL. */
export function resolveSettings(url: ParsedUrl, raw: Readonly<Record<string, unknown>>) {
  const { options: o, tls } = readOptions('stomp', spec, raw, {
    tls: { on: (o) => url.scheme === 'stomp+ssl' || o.tls, needs: 'stomp+ssl:// or tls=true' },
  });
  return {
    hosts: url.hosts,
    login: o.login ?? url.username,
    passcode: o.passcode ?? url.password,
    vhost: o.vhost ?? (url.path === '' ? '/' : url.path),
    heartbeatMs: o.heartbeatMs,
    tls,
    connectTimeoutMs: o.connectTimeoutMs,
    reconnectDelayMs: o.reconnectDelayMs,
    maxReconnectDelayMs: Math.max(o.maxReconnectDelayMs, o.reconnectDelayMs),
    operationTimeoutMs: o.operationTimeoutMs,
    profile: o.profile,
    delay: o.delay,
    redacted: url.redacted,
  };
}
