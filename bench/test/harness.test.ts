import { describe, expect, it } from 'vitest';
import {
  Counter,
  countAt,
  counting,
  measure,
  type Runner,
  type Scenario,
  type Side,
} from '../src/harness.js';

/**
 * An in-process side: a send resolves after `confirmMs`, its handler runs `handleMs` after the
 * send started. No broker is involved: what is tested is the harness's own timing.
 */
function timedSide(confirmMs: number, handleMs: number, seen: { depth?: number | undefined }): Side {
  return {
    async setup(): Promise<Runner> {
      const counter = new Counter();
      const send = () => {
        setTimeout(counter.hit, handleMs);
        return new Promise<void>((resolve) => setTimeout(resolve, confirmMs));
      };
      const timed = counting(counter, 7, send);
      return {
        ...timed,
        throughput: (count, depth) => {
          seen.depth = depth;
          return timed.throughput(count, depth);
        },
        close: async () => undefined,
      };
    },
  };
}

const scenario = (count: number, roundTrips: number, minCount?: number): Scenario => ({
  name: 'fixture',
  raw: timedSide(1, 1, {}),
  omnibus: timedSide(1, 1, {}),
  count,
  roundTrips,
  ...(minCount === undefined ? {} : { minCount }),
});

describe('bench harness', () => {
  it('sends the full count from 100 in flight and scales it down below, to a floor', () => {
    const s = scenario(10_000, 300);
    expect([1, 50, 100, 500].map((d) => countAt(s, d))).toEqual([600, 5000, 10_000, 10_000]);
    expect(countAt(s, 500, 0.25)).toBe(2500);
    expect(countAt(scenario(200_000, 2000, 50_000), 1)).toBe(50_000);
  });

  it('passes the depth to the runner and times each message from its send to its handler', async () => {
    const seen: { depth?: number | undefined } = {};
    // Handlers run ~25 ms after each send, confirms come after ~1 ms: the latency is the handler's.
    const slowHandler = await measure(timedSide(1, 25, seen), scenario(40, 20), 10, 40);
    expect(seen.depth).toBe(10);
    expect(slowHandler.p50).toBeGreaterThanOrEqual(24);
    expect(slowHandler.p99).toBeGreaterThanOrEqual(slowHandler.p50);
    // 40 messages, 10 at a time, each lane waiting ~1 ms per confirm: well under a second.
    expect(slowHandler.throughput).toBeGreaterThan(40);
  });

  it("measures this process's CPU per message: a side that computes costs more than one that waits", async () => {
    /** Each send busy-loops `spinMs` of CPU, then waits `waitMs` for its confirm. */
    const side = (spinMs: number, waitMs: number): Side => ({
      async setup(): Promise<Runner> {
        const counter = new Counter();
        const send = () => {
          const until = performance.now() + spinMs;
          while (performance.now() < until) {
            // spin
          }
          counter.hit();
          return new Promise<void>((resolve) => setTimeout(resolve, waitMs));
        };
        return { ...counting(counter, 4, send), close: async () => undefined };
      },
    });
    const busy = await measure(side(0.5, 0), scenario(40, 20), 4, 40);
    const idle = await measure(side(0, 5), scenario(40, 20), 4, 40);
    // 0.5 ms of CPU a message is 500 µs; waiting costs the timer's bookkeeping only.
    expect(busy.cpuUs).toBeGreaterThanOrEqual(450);
    expect(idle.cpuUs).toBeLessThan(busy.cpuUs! / 3);
  });
});
