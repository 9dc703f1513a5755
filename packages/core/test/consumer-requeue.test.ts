import { describe, expect, it } from 'vitest';
import { connect } from '../src/index.js';
import { until } from './helpers.js';

describe('a handler that always requeues', () => {
  it('does not starve timers when the broker has no native requeue (a log: handled again in process)', async () => {
    const bus = await connect('memory://requeue-in-process');
    const log = bus.log<number>('l');
    await log.append(1);
    await log.append(2);
    let deliveries = 0;
    let deliveriesWhenTimerFired = -1;
    await log.read(
      async (m) => {
        deliveries++;
        await m.requeue();
      },
      { from: 'earliest' },
    );
    await new Promise<void>((resolve) =>
      setTimeout(() => {
        deliveriesWhenTimerFired = deliveries;
        resolve();
      }, 1),
    );
    // A microtask loop would run thousands of times before a 1 ms timer.
    expect(deliveriesWhenTimerFired).toBeGreaterThan(0);
    expect(deliveriesWhenTimerFired).toBeLessThan(500);
    await until(() => deliveries > deliveriesWhenTimerFired + 5);
    await bus.close();
  });
});
