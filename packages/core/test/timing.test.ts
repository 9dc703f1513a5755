import { describe, expect, it } from 'vitest';
import { retryWithBackoff, TimeoutError, withTimeout } from '../src/index.js';

describe('withTimeout', () => {
  it('passes the outcome through when it comes in time', async () => {
    await expect(withTimeout(Promise.resolve(7), 1000, () => new Error('late'))).resolves.toBe(7);
    await expect(withTimeout(Promise.reject(new Error('no')), 1000, () => new Error('late'))).rejects.toThrow(
      'no',
    );
  });

  it('rejects with the given error when the promise does not settle in time', async () => {
    const never = new Promise<number>(() => undefined);
    const error = await withTimeout(never, 5, () => new TimeoutError('too slow', 5)).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TimeoutError);
  });
});

describe('retryWithBackoff', () => {
  it('tries again until an attempt succeeds, waiting longer each time up to the maximum', async () => {
    const at: number[] = [];
    const value = await retryWithBackoff(
      async () => {
        at.push(Date.now());
        if (at.length < 4) throw new Error('not yet');
        return 'up';
      },
      { firstDelayMs: 5, maxDelayMs: 20 },
    );
    expect(value).toBe('up');
    expect(at).toHaveLength(4);
  });

  it('stops once its signal aborts, without another attempt', async () => {
    const stop = new AbortController();
    let attempts = 0;
    const done = retryWithBackoff(
      async () => {
        attempts++;
        if (attempts === 2) stop.abort();
        throw new Error('down');
      },
      { firstDelayMs: 1, maxDelayMs: 1, signal: stop.signal },
    );
    await expect(done).resolves.toBeUndefined();
    expect(attempts).toBe(2);
  });
});
