import { delay } from '../src/deadlines.js';

/**
 * Waits for a condition, polling on timers (so it can only pass while timers still fire); fails with
 * `what` after `timeoutMs`. Never a fixed sleep.
 */
export async function until(condition: () => boolean, timeoutMs = 5000, what = 'condition'): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > end) throw new Error(`${what} not met within ${timeoutMs} ms`);
    await delay(2);
  }
}
