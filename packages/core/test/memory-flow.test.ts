import { randomUUID } from 'node:crypto';
import { connect, memoryBroker } from '@omnibus/core';
import { describe, expect, it } from 'vitest';
import { until } from './helpers.js';

// The backlog a consumed in-memory queue holds before a send's confirmation waits for its consumers
// (FLOW_THRESHOLD in src/memory/queue.ts).
const FLOW_THRESHOLD = 1024;

describe('memory queue: back-pressure', () => {
  it('keeps a producer from running away from its consumers: the backlog stays bounded', async () => {
    const name = `flow-${randomUUID()}`;
    await using bus = await connect(`memory://${name}`);
    const queue = bus.queue<number>('work');
    const LANES = 500;
    const COUNT = 30_000;
    let handled = 0;
    // An async handler: each message costs the consumer more turns than a send costs the producer.
    await queue.consume(
      async () => {
        handled++;
      },
      { concurrency: 256, prefetch: 256 },
    );
    const stored = memoryBroker(name).queue('work');
    let next = 0;
    let deepest = 0;
    const lane = async () => {
      while (next < COUNT) {
        next++;
        await queue.send(next);
        deepest = Math.max(deepest, stored.depth);
      }
    };
    await Promise.all(Array.from({ length: LANES }, lane));
    await until(() => handled === COUNT, 10_000, 'every message handled');
    // The threshold, plus one send per producer that had already enqueued, plus what is out with the consumer.
    expect(deepest).toBeLessThanOrEqual(FLOW_THRESHOLD + LANES + 256);
  });

  it('slows producers down while a consumer is stuck, but never holds them', async () => {
    const name = `flow-${randomUUID()}`;
    await using bus = await connect(`memory://${name}`);
    const queue = bus.queue<number>('stuck');
    let unstick!: () => void;
    const stuck = new Promise<void>((resolve) => {
      unstick = resolve;
    });
    await queue.consume(() => stuck, { concurrency: 10, prefetch: 10 });
    const COUNT = 3 * FLOW_THRESHOLD;
    const started = Date.now();
    for (let i = 0; i < COUNT; i++) await queue.send(i);
    // Each send past the threshold waits at most a turn of the event loop, not for the consumer.
    expect(Date.now() - started).toBeLessThan(5000);
    expect(memoryBroker(name).queue('stuck').depth).toBe(COUNT);
    unstick();
  });
});
