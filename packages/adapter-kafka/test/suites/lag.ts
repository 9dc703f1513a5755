/**
 * A log group's lag in `bus.health()`: what Kafka reports at each fetch (the partition's high
 * watermark) minus what the group has finished, so an operator sees a reader falling behind.
 */
import { waitFor } from '@omnibus/contract';
import { describe, expect, it } from 'vitest';
import { connectKafka, uniqueName } from '../helpers.js';

export function lagTests(): void {
  describe('kafka log group lag', () => {
    it('counts the messages a group has not finished, and falls to 0 once they are', {
      timeout: 90_000,
    }, async () => {
      const bus = await connectKafka();
      try {
        const log = bus.log<number>(uniqueName('lag'), { partitions: 1 });
        for (let i = 0; i < 10; i++) await log.append(i);
        let release: () => void = () => undefined;
        const held = new Promise<void>((resolve) => {
          release = resolve;
        });
        let handled = 0;
        await log.read(
          async () => {
            await held;
            handled++;
          },
          { group: uniqueName('g'), from: 'earliest', concurrency: 1, prefetch: 1 },
        );
        const lag = () => bus.health().consumers[0]?.lag;
        await waitFor(() => lag() !== undefined, 'a first fetch', 30_000);
        // One message is running and nothing is finished: every appended message still counts.
        expect(lag()).toBe(10);
        release();
        await waitFor(() => handled === 10, 'all ten handled', 30_000);
        await waitFor(() => lag() === 0, 'the lag to fall to 0', 30_000);
      } finally {
        await bus.close();
      }
    });
  });
}
