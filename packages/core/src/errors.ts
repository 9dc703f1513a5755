/**
 * Typed errors with stable `code`s. Every error Omnibus throws is an `OmnibusError`; the broker's
 * own error, when there is one, is kept as `cause`. Messages read `[omnibus] [adapter] …` and say
 * what to do. They never contain credentials: URLs are redacted before they reach an error.
 */

export type ErrorCode =
  | 'OMNIBUS_CONFIG'
  | 'OMNIBUS_CONNECTION'
  | 'OMNIBUS_UNSUPPORTED'
  | 'OMNIBUS_VALIDATION'
  | 'OMNIBUS_PUBLISH'
  | 'OMNIBUS_CAPACITY'
  | 'OMNIBUS_TIMEOUT'
  | 'OMNIBUS_CLOSED';

export interface ErrorOptions {
  readonly adapter?: string | undefined;
  readonly cause?: unknown;
}

/**
 * The base class: `instanceof OmnibusError` catches every Omnibus error. To narrow by `code`, use
 * `isOmnibusError(e)` (or the `OmnibusErrors` union): `switch (e.code)` then gives each class.
 */
export class OmnibusError<C extends ErrorCode = ErrorCode> extends Error {
  readonly code: C;
  readonly adapter: string | undefined;

  // Omnibus throws only the subclasses below, one per code, so `OmnibusErrors` is exhaustive.
  constructor(code: C, message: string, options: ErrorOptions = {}) {
    super(
      prefix(options.adapter) + message,
      options.cause === undefined ? undefined : { cause: options.cause },
    );
    this.name = new.target.name;
    this.code = code;
    this.adapter = options.adapter;
  }
}

/** Invalid configuration or options. `issues` lists every problem found, not only the first. */
export class ConfigError extends OmnibusError<'OMNIBUS_CONFIG'> {
  readonly issues: readonly string[];
  constructor(issues: readonly string[] | string, options: ErrorOptions = {}) {
    const list = typeof issues === 'string' ? [issues] : issues;
    const text =
      list.length === 1
        ? `invalid configuration: ${list[0]}`
        : `invalid configuration:\n  - ${list.join('\n  - ')}`;
    super('OMNIBUS_CONFIG', text, options);
    this.issues = list;
  }
}

/** The broker could not be reached, or the connection was lost and not re-established in time. */
export class ConnectionError extends OmnibusError<'OMNIBUS_CONNECTION'> {
  /** True when the operation may succeed if tried again after reconnection. */
  readonly retriable: boolean;
  constructor(message: string, options: ErrorOptions & { readonly retriable?: boolean } = {}) {
    super('OMNIBUS_CONNECTION', message, options);
    this.retriable = options.retriable ?? true;
  }
}

export interface MissingCapability {
  readonly feature: string;
  readonly required: string;
  readonly actual: string;
}

/** A feature the connected broker does not provide (capability `none`, or below what `requires` asked). */
export class UnsupportedCapabilityError extends OmnibusError<'OMNIBUS_UNSUPPORTED'> {
  readonly missing: readonly MissingCapability[];
  constructor(message: string, missing: readonly MissingCapability[], options: ErrorOptions = {}) {
    super('OMNIBUS_UNSUPPORTED', message, options);
    this.missing = missing;
  }
}

/** A payload, destination name, subject or option that is not valid. `issues` lists every problem. */
export class ValidationError extends OmnibusError<'OMNIBUS_VALIDATION'> {
  readonly issues: readonly string[];
  constructor(message: string, issues: readonly string[] = [], options: ErrorOptions = {}) {
    super('OMNIBUS_VALIDATION', issues.length > 0 ? `${message}: ${issues.join('; ')}` : message, options);
    this.issues = issues;
  }
}

/** The broker did not accept a message (negative confirm, unroutable, refused). */
export class PublishError extends OmnibusError<'OMNIBUS_PUBLISH'> {
  constructor(message: string, options: ErrorOptions = {}) {
    super('OMNIBUS_PUBLISH', message, options);
  }
}

/** A bounded resource is full: a memory queue at its limit, or the send buffer during an outage. */
export class CapacityError extends OmnibusError<'OMNIBUS_CAPACITY'> {
  readonly limit: number;
  constructor(message: string, limit: number, options: ErrorOptions = {}) {
    super('OMNIBUS_CAPACITY', message, options);
    this.limit = limit;
  }
}

/** An operation did not complete within its deadline. */
export class TimeoutError extends OmnibusError<'OMNIBUS_TIMEOUT'> {
  readonly timeoutMs: number;
  constructor(message: string, timeoutMs: number, options: ErrorOptions = {}) {
    super('OMNIBUS_TIMEOUT', message, options);
    this.timeoutMs = timeoutMs;
  }
}

/** The bus, or the consumer, was closed. */
export class ClosedError extends OmnibusError<'OMNIBUS_CLOSED'> {
  constructor(message: string, options: ErrorOptions = {}) {
    super('OMNIBUS_CLOSED', message, options);
  }
}

/** Every error Omnibus throws, discriminated by `code`: `switch (e.code)` narrows to the class. */
export type OmnibusErrors =
  | ConfigError
  | ConnectionError
  | UnsupportedCapabilityError
  | ValidationError
  | PublishError
  | CapacityError
  | TimeoutError
  | ClosedError;

/** True for any Omnibus error; the result narrows by `code` (see `OmnibusErrors`). */
export function isOmnibusError(value: unknown): value is OmnibusErrors {
  return value instanceof OmnibusError;
}

/** A short, single-line description of any thrown value, for headers and logs. */
export function describeError(error: unknown): string {
  if (error instanceof Error) return error.message || error.name;
  if (typeof error === 'string') return error;
  try {
    return JSON.stringify(error) ?? String(error);
  } catch {
    return String(error);
  }
}

function prefix(adapter: string | undefined): string {
  return adapter === undefined ? '[omnibus] ' : `[omnibus] [${adapter}] `;
}
