import { describe, expect, it } from 'vitest';
import { loopNow } from '../src/clock.js';
import { delay } from '../src/deadlines.js';

describe('loopNow', () => {
  it('reads the clock once per job: the same time within a job, the time of the next job after it', async () => {
    await delay(1);
    const before = Date.now();
    const first = loopNow();
    expect(first).toBeGreaterThanOrEqual(before);
    // The thread busy for a few ms: the job's time does not move.
    while (Date.now() < first + 5) {
      /* spin */
    }
    expect(loopNow()).toBe(first);
    await delay(5);
    const later = loopNow();
    expect(later).toBeGreaterThanOrEqual(first + 5);
    expect(later).toBeLessThanOrEqual(Date.now());
  });

  it('is read again after the microtasks queued before its first read in a job', async () => {
    const first = loopNow();
    while (Date.now() < first + 3) {
      /* spin */
    }
    await Promise.resolve();
    await Promise.resolve();
    expect(loopNow()).toBeGreaterThanOrEqual(first + 3);
  });
});
