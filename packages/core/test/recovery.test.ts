import { afterEach, describe, expect, it, vi } from 'vitest';
import { Recovery } from '../src/index.js';

describe('Recovery', () => {
  afterEach(() => vi.useRealTimers());

  it('reports down once per outage and up once a probe succeeds, backing off between probes', async () => {
    vi.useFakeTimers();
    const events: string[] = [];
    let answers = false;
    const probes: number[] = [];
    const recovery = new Recovery({
      probe: async () => {
        probes.push(Date.now());
        if (!answers) throw new Error('no answer');
      },
      onDown: (error) => void events.push(`down: ${error.message}`),
      onUp: () => void events.push('up'),
    });
    const start = Date.now();
    recovery.lost(new Error('socket closed'));
    recovery.lost(new Error('request failed'));
    await vi.advanceTimersByTimeAsync(250 + 250 + 500 + 1000 + 2000 + 2000);
    expect(probes.map((t) => t - start)).toEqual([250, 500, 1000, 2000, 4000, 6000]);
    answers = true;
    await vi.advanceTimersByTimeAsync(2000);
    expect(events).toEqual(['down: socket closed', 'up']);
    recovery.lost(new Error('again'));
    await vi.advanceTimersByTimeAsync(250);
    expect(events).toEqual(['down: socket closed', 'up', 'down: again', 'up']);
  });

  it('stops probing once closed', async () => {
    vi.useFakeTimers();
    const probe = vi.fn(async () => {
      throw new Error('no answer');
    });
    const recovery = new Recovery({ probe, onDown: () => undefined, onUp: () => undefined });
    recovery.lost(new Error('gone'));
    await vi.advanceTimersByTimeAsync(600);
    const calls = probe.mock.calls.length;
    recovery.close();
    await vi.advanceTimersByTimeAsync(10_000);
    expect(probe.mock.calls.length).toBe(calls);
    recovery.lost(new Error('after close'));
    await vi.advanceTimersByTimeAsync(10_000);
    expect(probe.mock.calls.length).toBe(calls);
  });
});
