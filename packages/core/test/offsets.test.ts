import { describe, expect, it } from 'vitest';
import { OffsetTracker } from '../src/index.js';

describe('OffsetTracker', () => {
  it('commits only past finished offsets, contiguously', () => {
    const tracker = new OffsetTracker(10);
    for (const offset of [10, 11, 12, 13]) tracker.delivered(offset);
    expect(tracker.finish(12)).toBe(false);
    expect(tracker.committable).toBe(10);
    expect(tracker.finish(10)).toBe(true);
    expect(tracker.committable).toBe(11);
    expect(tracker.finish(11)).toBe(true);
    expect(tracker.committable).toBe(13);
    expect(tracker.inFlight).toBe(1);
    tracker.finish(13);
    expect(tracker.committable).toBe(14);
  });

  it('finishing in order and out of order mixed, over the compaction of its list', () => {
    const tracker = new OffsetTracker(0);
    for (let o = 0; o < 3000; o++) tracker.delivered(o);
    for (let o = 0; o < 2000; o++) expect(tracker.finish(o)).toBe(true);
    expect(tracker.committable).toBe(2000);
    expect(tracker.finish(2001)).toBe(false);
    expect(tracker.finish(2000)).toBe(true);
    expect(tracker.committable).toBe(2002);
    for (let o = 2002; o < 3000; o++) tracker.finish(o);
    expect(tracker.committable).toBe(3000);
    expect(tracker.inFlight).toBe(0);
  });

  it('handles gaps in offsets (compacted or transactional logs)', () => {
    const tracker = new OffsetTracker(0);
    for (const offset of [0, 5, 9]) tracker.delivered(offset);
    tracker.finish(9);
    tracker.finish(0);
    expect(tracker.committable).toBe(1);
    tracker.finish(5);
    expect(tracker.committable).toBe(10);
  });

  it('stays correct over many offsets finished in random order', () => {
    const tracker = new OffsetTracker(0);
    const offsets = Array.from({ length: 5000 }, (_, i) => i);
    for (const o of offsets) tracker.delivered(o);
    const shuffled = [...offsets].sort(() => Math.random() - 0.5);
    const finished = new Set<number>();
    let expected = 0;
    for (const o of shuffled) {
      tracker.finish(o);
      finished.add(o);
      while (finished.has(expected)) expected++;
      expect(tracker.committable).toBe(expected);
    }
  });
});
