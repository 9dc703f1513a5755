/**
 * Checks of the numbers and policies an application gives (retry policy, consumer options), shared
 * by the bus and its handles: every bad value is a `ValidationError` naming it.
 */
import type { DestinationKind } from './diagnostics.js';
import { ValidationError } from './errors.js';
import { deadLetterName, validateName } from './routing.js';
import type { ConsumeOptions, ReadOptions, RetryPolicy, SubscribeOptions } from './types.js';

export const DEFAULT_MAX_ATTEMPTS = 5;
export const DEFAULT_HANDLER_TIMEOUT_MS = 30_000;
export const DEFAULT_MAX_PRIORITY = 9;

/** `consumer`: the durable subscription or log group, whose dead letters get a queue of their own. */
export function retryPolicy(destination: string, policy: RetryPolicy, consumer?: string) {
  const maxAttempts = positiveInt('maxAttempts', policy.maxAttempts, DEFAULT_MAX_ATTEMPTS, 1_000_000);
  // A derived name is not checked against the name limit: `<name>.dlq` of a valid name is valid
  // (at most 208 characters, for the dead letters of a dead-letter queue: every broker takes it),
  // and `deadLetterName` keeps `<name>.<consumer>.dlq` within the same bound.
  const deadLetter =
    policy.deadLetter === undefined
      ? deadLetterName(destination, consumer)
      : validateName('dead-letter queue', policy.deadLetter);
  const delaySetting = policy.retryDelayMs ?? 0;
  if (typeof delaySetting === 'number') positiveInt('retryDelayMs', delaySetting, 0, 2 ** 31 - 1, 0);
  else if (typeof delaySetting !== 'function')
    throw new ValidationError('retryDelayMs must be a number or a function');
  const retryDelay =
    typeof delaySetting === 'number'
      ? () => delaySetting
      : (attempt: number) => {
          const ms = delaySetting(attempt);
          return Number.isFinite(ms) && ms > 0 ? ms : 0;
        };
  return { maxAttempts, deadLetter, retryDelay };
}

export function pick(options: SubscribeOptions): RetryPolicy {
  return {
    ...(options.maxAttempts === undefined ? {} : { maxAttempts: options.maxAttempts }),
    ...(options.retryDelayMs === undefined ? {} : { retryDelayMs: options.retryDelayMs }),
    ...(options.deadLetter === undefined ? {} : { deadLetter: options.deadLetter }),
  };
}

/** The options `consume()`, `subscribe()` and `read()` take: typed, so a new option cannot be forgotten here. */
const QUEUE_CONSUME: Record<keyof ConsumeOptions, true> = {
  concurrency: true,
  prefetch: true,
  signal: true,
  handlerTimeoutMs: true,
};
const TOPIC_SUBSCRIBE: Record<keyof SubscribeOptions, true> = {
  ...QUEUE_CONSUME,
  durable: true,
  maxAttempts: true,
  retryDelayMs: true,
  deadLetter: true,
};
const LOG_READ: Record<keyof ReadOptions, true> = { ...QUEUE_CONSUME, group: true, from: true };
export const CONSUME_OPTIONS: Readonly<Record<DestinationKind, readonly string[]>> = {
  queue: Object.keys(QUEUE_CONSUME),
  topic: Object.keys(TOPIC_SUBSCRIBE),
  log: Object.keys(LOG_READ),
};

/** An integer option in [min, max]; `fallback` when undefined. NaN, fractions and out-of-range values throw. */
export function positiveInt(name: string, value: unknown, fallback: number, max: number, min = 1): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw new ValidationError(`${name} must be an integer from ${min} to ${max}, got ${String(value)}`);
  }
  return value;
}
