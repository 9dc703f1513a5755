/**
 * Configuration: the URL or object that picks an adapter, the connect options, and the helpers
 * adapters use to validate their own options with zod — every problem reported at once.
 */
import type { ConnectionOptions } from 'node:tls';
import { z } from 'zod';
import type { AdapterFactory } from './adapter.js';
import { FEATURES, type Requirements } from './capabilities.js';
import { ConfigError } from './errors.js';
import type { MemoryOptions } from './memory/adapter.js';
import { type OptionSpecs, type ResolvedOptions, unknownKeys, zodIssues } from './options.js';
import { defaultScheme, knownSchemes, type SchemeInfo } from './registry.js';
import { resolveTls, TLS_OPTION_NAMES, type TlsOptions } from './tls.js';
import type { Logger } from './types.js';
import { type ParsedUrl, parseUrl } from './url.js';

/**
 * Per-adapter option types, filled in by adapter packages with declaration merging:
 * `declare module '@omnibus/core' { interface AdapterConfigs { rabbitmq: RabbitmqOptions } }`.
 */
// biome-ignore lint/suspicious/noEmptyInterface: extended by adapter packages
export interface AdapterConfigs {}

interface BaseObjectConfig {
  /** A URL; its scheme must belong to the adapter. Options given here win over its query. */
  readonly url?: string;
}

/** The object form of configuration: `{ adapter: 'memory', ... }`, validated like a URL. */
export type OmnibusConfig =
  | ({ readonly adapter: 'memory' } & BaseObjectConfig & MemoryConfigOptions)
  | {
      [K in keyof AdapterConfigs]: { readonly adapter: K } & BaseObjectConfig & AdapterConfigs[K];
    }[keyof AdapterConfigs];

/** Options of the built-in in-memory broker (`memory://name?maxQueueLength=…`). */
export type MemoryConfigOptions = MemoryOptions;

export interface SendBufferOptions {
  /** Sends that may wait for the connection to come back. @default 1000 */
  readonly maxMessages?: number;
  /** How long one send may wait for the connection and the broker's confirmation. @default 30000 */
  readonly timeoutMs?: number;
}

export interface ConnectOptions {
  /** Identifies this client to the broker and in logs. @default `omnibus-<random>` */
  readonly clientId?: string;
  /** Fail at connect when the broker lacks these (a list means "at least emulated"). */
  readonly requires?: Requirements;
  /** Where Omnibus logs. @default silent */
  readonly logger?: Logger;
  /** Adapters to use instead of loading `@omnibus/adapter-*` by scheme (for bundlers, or your own). */
  readonly adapters?: readonly AdapterFactory[];
  /** Bound on connecting. @default 15000 */
  readonly connectTimeoutMs?: number;
  /** Sends during an outage wait here, bounded; never dropped. */
  readonly sendBuffer?: SendBufferOptions;
  /** Longest a `close()` waits for running handlers. @default 30000 */
  readonly closeTimeoutMs?: number;
}

export interface ResolvedConnectOptions {
  readonly clientId: string;
  readonly requires: Requirements | undefined;
  readonly logger: Logger;
  readonly adapters: readonly AdapterFactory[];
  readonly connectTimeoutMs: number;
  readonly sendBuffer: Required<SendBufferOptions>;
  readonly closeTimeoutMs: number;
}

const silentLogger: Logger = { debug() {}, info() {}, warn() {}, error() {} };

const support = z.enum(['native', 'emulated', 'none']);
const feature = z.enum(FEATURES);
const positiveInt = z.number().int().positive();

const connectOptionsSchema = z.object({
  clientId: z
    .string()
    .min(1)
    .max(100)
    .regex(/^[A-Za-z0-9._-]+$/, 'use letters, digits, ".", "_" and "-"')
    .optional(),
  requires: z.union([z.array(feature), z.partialRecord(feature, support)]).optional(),
  logger: z
    .custom<Logger>((v) => typeof v === 'object' && v !== null && 'warn' in v, 'expected a logger')
    .optional(),
  adapters: z
    .array(
      z.custom<AdapterFactory>(
        (v) => typeof v === 'object' && v !== null && 'create' in v,
        'expected an adapter',
      ),
    )
    .optional(),
  connectTimeoutMs: positiveInt.optional(),
  sendBuffer: z
    .object({ maxMessages: z.number().int().nonnegative().optional(), timeoutMs: positiveInt.optional() })
    .optional(),
  closeTimeoutMs: positiveInt.optional(),
});

export function resolveConnectOptions(options: ConnectOptions | undefined): ResolvedConnectOptions {
  const parsed = connectOptionsSchema.safeParse(options ?? {});
  // A typo (`connectTimeout`, `clientID`) would otherwise be ignored without a word.
  const issues = unknownKeys('options', options, Object.keys(connectOptionsSchema.shape));
  const sendBuffer = (options as { sendBuffer?: unknown } | undefined)?.sendBuffer;
  issues.push(...unknownKeys('options.sendBuffer', sendBuffer, ['maxMessages', 'timeoutMs']));
  if (!parsed.success) issues.unshift(...zodIssues(parsed.error, ''));
  if (issues.length > 0 || !parsed.success) throw new ConfigError(issues);
  const o = parsed.data;
  return {
    clientId: o.clientId ?? `omnibus-${Math.random().toString(36).slice(2, 10)}`,
    requires: o.requires as Requirements | undefined,
    logger: o.logger ?? silentLogger,
    adapters: o.adapters ?? [],
    connectTimeoutMs: o.connectTimeoutMs ?? 15_000,
    sendBuffer: {
      maxMessages: o.sendBuffer?.maxMessages ?? 1000,
      timeoutMs: o.sendBuffer?.timeoutMs ?? 30_000,
    },
    closeTimeoutMs: o.closeTimeoutMs ?? 30_000,
  };
}

export interface ResolvedTarget {
  readonly adapter: string;
  readonly url: ParsedUrl;
  readonly options: Record<string, unknown>;
}

/** Turns a URL or an object config into the adapter name, the parsed URL and the raw options. */
export function resolveTarget(
  config: string | OmnibusConfig,
  schemes: ReadonlyMap<string, SchemeInfo> = knownSchemes(),
): ResolvedTarget {
  if (typeof config === 'string') {
    const url = parseUrl(config);
    const info = schemes.get(url.scheme);
    if (info === undefined) {
      throw new ConfigError(
        `unknown scheme "${url.scheme}://" in "${url.redacted}": no adapter passed, registered or installed serves it — install the adapter package for that broker (one named @omnibus/adapter-*, omnibus-adapter-* or @scope/omnibus-adapter-* whose package.json declares "omnibus": { "schemes": ["${url.scheme}"] }), or pass it in options.adapters; known: ${[...schemes.keys()].map((s) => `${s}://`).join(', ')}`,
      );
    }
    if (!info.hostOptional && url.hosts.length === 0) {
      throw new ConfigError(`"${url.redacted}" has no host; e.g. ${url.scheme}://localhost`);
    }
    return { adapter: info.adapter, url, options: { ...url.params } };
  }
  if (typeof config !== 'object' || config === null) {
    throw new ConfigError('configuration must be a URL string or an object with an "adapter" field');
  }
  const {
    adapter,
    url: urlText,
    ...options
  } = config as { adapter?: unknown; url?: unknown } & Record<string, unknown>;
  const issues: string[] = [];
  if (typeof adapter !== 'string' || adapter === '') issues.push('adapter: required, e.g. "rabbitmq"');
  if (urlText !== undefined && typeof urlText !== 'string') issues.push('url: expected a string');
  if (issues.length > 0) throw new ConfigError(issues);
  const name = adapter as string;
  const url = parseUrl(typeof urlText === 'string' ? urlText : `${defaultScheme(name, schemes) ?? name}://`);
  const owner = schemes.get(url.scheme)?.adapter;
  if (owner !== undefined && owner !== name) {
    throw new ConfigError(`url: "${url.redacted}" is a ${owner} URL, but adapter is "${name}"`);
  }
  return { adapter: name, url, options: { ...url.params, ...options } };
}

export interface ReadOptionsExtras<S extends OptionSpecs> {
  /**
   * TLS: whether the connection uses it (`on`), and what turns it on (`needs`, e.g. "an amqps://
   * URL"): the core TLS options given without TLS are refused instead of silently ignored.
   */
  readonly tls?: {
    readonly on: boolean | ((options: ResolvedOptions<S>) => boolean);
    readonly needs: string;
  };
  /** Checks across options, once each one is valid: problems as strings, `false` for none. */
  readonly check?: (options: ResolvedOptions<S>) => readonly (string | false)[];
}

/**
 * Reads raw options against a spec: coerced, checked, defaults applied; unknown names refused;
 * every problem in one `ConfigError` (secrets never echoed). `tls` is node's TLS options when
 * the connection uses TLS (files read, verification on unless turned off).
 */
export function readOptions<S extends OptionSpecs>(
  adapter: string,
  spec: S,
  raw: Readonly<Record<string, unknown>>,
  extras: ReadOptionsExtras<S> = {},
): { readonly options: ResolvedOptions<S>; readonly tls: ConnectionOptions | undefined } {
  const issues = unknownKeys('', raw, Object.keys(spec));
  const options: Record<string, unknown> = {};
  for (const [name, { schema, default: fallback }] of Object.entries(spec)) {
    const value = raw[name];
    if (value === undefined) {
      options[name] = fallback;
      continue;
    }
    const parsed = schema.safeParse(value);
    if (parsed.success) options[name] = parsed.data;
    else issues.push(...zodIssues(parsed.error, name));
  }
  const resolved = options as ResolvedOptions<S>;
  const { tls, check } = extras;
  let secure = false;
  // Checks across options need every option valid first.
  if (issues.length === 0) {
    secure = tls !== undefined && (typeof tls.on === 'boolean' ? tls.on : tls.on(resolved));
    const plain =
      tls === undefined || secure ? [] : TLS_OPTION_NAMES.filter((name) => options[name] !== undefined);
    issues.push(
      ...plain.map((name) => `${name}: TLS options need ${tls?.needs} (TLS is off: they would be ignored)`),
      ...(check?.(resolved) ?? []).filter((issue): issue is string => issue !== false),
    );
  }
  if (issues.length > 0) throw new ConfigError(issues, { adapter });
  return { options: resolved, tls: secure ? resolveTls(adapter, options as TlsOptions) : undefined };
}

export { z };
