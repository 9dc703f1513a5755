import { describe, expect, it } from 'vitest';
import { type CpuProfile, selfTimes, shortUrl, summaryText } from '../src/profile.js';

const frame = (functionName: string, url: string) => ({ functionName, url, lineNumber: 0 });

/**
 * root → main → { send (core), encode (core) }, and a second node of `send` reached another way:
 * self time is per function and script, whichever call path it was sampled on.
 */
const profile: CpuProfile = {
  nodes: [
    { id: 1, callFrame: frame('(root)', '') },
    { id: 2, callFrame: frame('main', 'file:///work/wt-bench/bench/dist/main.js') },
    { id: 3, callFrame: frame('send', 'file:///work/wt-bench/packages/core/dist/queue.js') },
    {
      id: 4,
      callFrame: frame('', 'file:///x/node_modules/.pnpm/amqplib@2.3.1/node_modules/amqplib/lib/channel.js'),
    },
    { id: 5, callFrame: frame('send', 'file:///work/wt-bench/packages/core/dist/queue.js') },
    { id: 6, callFrame: frame('(garbage collector)', '') },
  ],
  startTime: 0,
  endTime: 1000,
  // The interval after each sample is charged to it: 3 gets 100+200, 4 gets 300, 5 gets 150,
  // 6 gets 50, 2 gets 100, and the last sample the mean interval (1000 / 7 µs).
  samples: [3, 3, 4, 5, 6, 2, 3],
  timeDeltas: [0, 100, 200, 300, 150, 50, 100],
};

describe('profile summary', () => {
  it('adds self time by function and script, most first, with shares of the total', () => {
    const rows = selfTimes(profile);
    const last = 1000 / 7;
    const total = 100 + 200 + 300 + 150 + 50 + 100 + last;
    expect(rows.map((r) => [r.functionName, r.url])).toEqual([
      ['send', 'packages/core/dist/queue.js'],
      ['(anonymous)', 'node_modules/amqplib/lib/channel.js'],
      ['main', 'bench/dist/main.js'],
      ['(garbage collector)', ''],
    ]);
    expect(rows.map((r) => r.selfMs)).toEqual([Math.round(100 + 200 + 150 + last) / 1000, 0.3, 0.1, 0.05]);
    expect(rows[0]!.percent).toBeCloseTo(((450 + last) / total) * 100, 0);
    expect(rows.reduce((sum, r) => sum + r.percent, 0)).toBeCloseTo(100, 0);
    expect(selfTimes(profile, 2)).toHaveLength(2);
  });

  it('falls back to hit counts when a profile has no samples', () => {
    const rows = selfTimes({
      nodes: [
        { id: 1, callFrame: frame('a', ''), hitCount: 3 },
        { id: 2, callFrame: frame('b', ''), hitCount: 1 },
      ],
      startTime: 0,
      endTime: 4000,
    });
    expect(rows.map((r) => [r.functionName, r.selfMs, r.percent])).toEqual([
      ['a', 3, 75],
      ['b', 1, 25],
    ]);
  });

  it('shortens script paths and prints one line per function', () => {
    expect(shortUrl('node:internal/streams/writable')).toBe('node:internal/streams/writable');
    expect(summaryText('t', selfTimes(profile, 1)).split('\n')).toHaveLength(3);
  });
});
