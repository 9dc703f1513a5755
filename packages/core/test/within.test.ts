import { describe, expect, it, vi } from 'vitest';
import { within } from '../src/index.js';

describe('within', () => {
  it('resolves with the value when it comes in time, and clears its timer', async () => {
    vi.useFakeTimers();
    try {
      await expect(within(Promise.resolve(7), 1000, 'late')).resolves.toBe(7);
      expect(vi.getTimerCount()).toBe(0);
    } finally {
      vi.useRealTimers();
    }
  });

  it('resolves with the fallback (undefined by default) once the time is up', async () => {
    const never = new Promise<number>(() => undefined);
    await expect(within(never, 5, false)).resolves.toBe(false);
    await expect(within(never, 5)).resolves.toBeUndefined();
  });

  it('passes a rejection through', async () => {
    await expect(within(Promise.reject(new Error('boom')), 1000)).rejects.toThrow('boom');
  });
});
