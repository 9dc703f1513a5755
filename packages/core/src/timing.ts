/**
 * Waiting helpers for adapters that talk to a broker by hand: bound a wait for the broker's answer,
 * and retry a connection with backoff. Written once here so every adapter times out and backs off
 * the same way.
 */
import { delay } from './deadlines.js';

/**
 * Resolves with what `promise` resolves to, or with `fallback` once `ms` have passed, whichever
 * comes first; a rejection passes through. The timer is cleared when the promise settles and
 * never keeps the process alive. For waits that may never end: a broker's goodbye, a marker.
 */
export function within<T, F = undefined>(promise: Promise<T>, ms: number, fallback?: F): Promise<T | F> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<F>((resolve) => {
    timer = setTimeout(() => resolve(fallback as F), ms);
    timer.unref?.();
  });
  return Promise.race([promise, late]).finally(() => clearTimeout(timer));
}

const TIMED_OUT: unique symbol = Symbol('timed out');

/**
 * `promise`'s outcome, or a rejection with `onTimeout()` when it has not settled after `ms`. The
 * timer is cleared either way; `promise` itself is not cancelled.
 */
export async function withTimeout<T>(promise: Promise<T>, ms: number, onTimeout: () => Error): Promise<T> {
  const result = await within(promise, ms, TIMED_OUT);
  if (result === TIMED_OUT) throw onTimeout();
  return result;
}

export interface BackoffOptions {
  /** Wait before the first attempt; it doubles after each failure. */
  readonly firstDelayMs: number;
  /** Longest wait between two attempts. */
  readonly maxDelayMs: number;
  /** Stops retrying: once it aborts, no attempt starts any more. */
  readonly signal?: AbortSignal;
}

/**
 * Runs `attempt` until it resolves, waiting before each try with exponential backoff and ±20 %
 * jitter (clients cut off together do not all come back at the same moment). Resolves with the
 * attempt's value, or `undefined` once `signal` aborts.
 */
export async function retryWithBackoff<T>(
  attempt: () => Promise<T>,
  { firstDelayMs, maxDelayMs, signal }: BackoffOptions,
): Promise<T | undefined> {
  let delayMs = firstDelayMs;
  while (await delay(delayMs * (0.8 + Math.random() * 0.4), signal)) {
    try {
      return await attempt();
    } catch {
      delayMs = Math.min(delayMs * 2, maxDelayMs);
    }
  }
  return undefined;
}
