import { describe, expect, it } from 'vitest';
import { Committer, HEADER, LogStart, ValidationError } from '../src/index.js';

const entry = (sentAt: number) => ({ headers: { [HEADER.timestamp]: String(sentAt) }, timestamp: undefined });

describe('LogStart', () => {
  it('refuses positions on a partition other than 0', () => {
    const from = { kind: 'positions', positions: [{ partition: 2, offset: 0 }] } as const;
    expect(() => new LogStart(from, 'log "l"', 'x')).toThrow(ValidationError);
  });

  it('skips entries before an offset until one is at or after it', () => {
    const start = new LogStart({ kind: 'positions', positions: [{ partition: 0, offset: 5 }] }, 'l', 'x');
    expect(start.next()).toEqual({ offset: 5 });
    expect(start.accepts(3, entry(0))).toBe(false);
    expect(start.accepts(5, entry(0))).toBe(true);
    expect(start.accepts(4, entry(0))).toBe(true);
  });

  it('from a time: asks a second early and skips what was sent before it', () => {
    const start = new LogStart({ kind: 'timestamp', timestamp: 10_500 }, 'l', 'x');
    expect(start.next()).toEqual({ seconds: 9 });
    expect(start.accepts(0, entry(10_499))).toBe(false);
    expect(start.accepts(1, entry(10_500))).toBe(true);
  });

  it('from latest: next, then after a reconnection with nothing read, from when it started', () => {
    const start = new LogStart({ kind: 'latest' }, 'l', 'x');
    const before = Date.now();
    expect(start.next()).toBe('next');
    const again = start.next();
    expect(again).toHaveProperty('seconds');
    expect((again as { seconds: number }).seconds).toBeLessThanOrEqual(Math.floor(before / 1000));
    expect(start.accepts(0, entry(before - 5000))).toBe(false);
    // Once something was read, a reconnection resumes at the offset given.
    expect(start.next(42)).toEqual({ offset: 42 });
    expect(start.accepts(41, entry(Date.now()))).toBe(false);
  });
});

describe('Committer', () => {
  it('runs one commit at a time, and a failed one does not stop the next', async () => {
    const log: string[] = [];
    let running = 0;
    let fail = true;
    const schedule = new Committer(async () => {
      running++;
      expect(running).toBe(1);
      await new Promise((resolve) => setTimeout(resolve, 5));
      running--;
      log.push(fail ? 'failed' : 'ok');
      if (fail) {
        fail = false;
        throw new Error('lost');
      }
    }, 10);
    const first = schedule.now();
    const second = schedule.now();
    await expect(first).rejects.toThrow('lost');
    await second;
    expect(log).toEqual(['failed', 'ok']);
  });

  it('soon() commits once per interval however often progress is reported, and cancel() drops it', async () => {
    let commits = 0;
    const schedule = new Committer(async () => {
      commits++;
    }, 20);
    for (let i = 0; i < 10; i++) schedule.soon();
    while (commits === 0) await new Promise((resolve) => setTimeout(resolve, 5));
    expect(commits).toBe(1);
    schedule.soon();
    schedule.cancel();
    await new Promise((resolve) => setTimeout(resolve, 60));
    expect(commits).toBe(1);
  });
});
