/**
 * Configuration: the URL or object that picks an adapter, the connect options, and the helpers
 * adapters use to validate their own options with zod — every problem reported at once.
 */
import { z } from 'zod';
import type { AdapterFactory } from './adapter.js';
import { FEATURES, type Requirements } from './capabilities.js';
import { ConfigError } from './errors.js';
import { defaultScheme, knownSchemes, type SchemeInfo } from './registry.js';
import type { Logger } from './types.js';
import { type ParsedUrl, parseUrl, redactUrl } from './url.js';

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
export interface MemoryConfigOptions {
  /** Messages a queue (or subscription) may hold, ready, delayed and unacked together. @default 100000 */
  readonly maxQueueLength?: number;
  /** Behave like another broker (`kafka`, `stomp-activemq`…); see `registerProfile`. @default none */
  readonly profile?: string;
}

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
  if (!parsed.success) issues.unshift(...zodIssues(parsed.error, 'options'));
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

/**
 * For adapters: validates raw options (URL query strings and object values alike) with a zod
 * schema and throws one `ConfigError` listing every problem. Secrets are never echoed back.
 */
export function parseOptions<S extends z.ZodType>(adapter: string, schema: S, raw: unknown): z.output<S> {
  const parsed = schema.safeParse(raw);
  if (parsed.success) return parsed.data;
  throw new ConfigError(zodIssues(parsed.error, 'options'), { adapter });
}

/** Zod helpers for option fields that arrive as strings in a URL query or as values in an object. */
export const option = {
  /** A non-negative integer, from `5` or `"5"`; rejects NaN, fractions and negatives. */
  int: (min = 0) => z.coerce.number().int().min(min),
  /** A positive number of milliseconds. */
  ms: () => z.coerce.number().int().positive(),
  /** `true`/`false` or the strings `true|false|1|0|yes|no|on|off`. */
  bool: () => z.union([z.boolean(), z.stringbool()]),
};

/**
 * One issue per key of `value` (a plain object) that is not in `known`, naming the known ones:
 * options are checked, never ignored, so a misspelt one fails instead of silently doing nothing.
 */
export function unknownKeys(where: string, value: unknown, known: readonly string[]): string[] {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return [];
  return Object.keys(value)
    .filter((key) => !known.includes(key))
    .map((key) => `${where}: unknown option "${printable(key)}"; known: ${known.join(', ')}`);
}

function printable(key: string): string {
  return key.length > 60 ? `${key.slice(0, 60)}…` : key.replace(/[^\x20-\x7e]/g, '?');
}

function zodIssues(error: z.ZodError, root: string): string[] {
  return error.issues.map((issue) => {
    const path = issue.path.length > 0 ? issue.path.map(String).join('.') : root;
    return redactUrl(`${path}: ${issue.message}`);
  });
}

export { z };
