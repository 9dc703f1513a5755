import { randomUUID } from 'node:crypto';
import { connect, delay } from '@omnibus/core';
import { describe, expect, it } from 'vitest';
import { until } from './helpers.js';

describe('memory queue: requeue()', () => {
  it('redelivers on the next turn of the event loop, so timers run while handlers requeue', async () => {
    await using bus = await connect(`memory://requeue-${randomUUID()}`);
    const queue = bus.queue<number>('work');
    // Bounded, so the test ends even where requeues spin in microtasks (they did: timers never fired).
    const LIMIT = 5000;
    let deliveries = 0;
    const acked = new Set<number>();
    await queue.consume(async (m) => {
      deliveries++;
      if (deliveries < LIMIT) return m.requeue();
      acked.add(m.payload);
    });
    let atFirstTimer: number | undefined;
    const timer = new Promise<void>((resolve) =>
      setTimeout(() => {
        atFirstTimer = deliveries;
        resolve();
      }, 1),
    );
    await queue.send(1);
    await queue.send(2);
    await timer;
    // One or two rounds of both messages per turn, not thousands before the first timer.
    expect(atFirstTimer).toBeLessThan(LIMIT / 10);
    await until(() => acked.size === 2, 2000, 'both messages acked');
  });

  it('redelivers a lone requeued message with nothing else happening on the queue', async () => {
    await using bus = await connect(`memory://requeue-${randomUUID()}`);
    const queue = bus.queue<string>('alone');
    const attempts: { attempt: number; redelivered: boolean }[] = [];
    let acked = false;
    await queue.consume(async (m) => {
      attempts.push({ attempt: m.attempt, redelivered: m.redelivered });
      if (attempts.length < 4) return m.requeue();
      acked = true;
    });
    await queue.send('only');
    // It used to stall after its second delivery until another message arrived.
    await until(() => acked, 2000, 'the fourth delivery');
    expect(attempts).toEqual([
      { attempt: 1, redelivered: false },
      { attempt: 1, redelivered: true },
      { attempt: 1, redelivered: true },
      { attempt: 1, redelivered: true },
    ]);
  });

  it('keeps the process responsive with a handler that always requeues, until it closes', async () => {
    const bus = await connect(`memory://requeue-${randomUUID()}`);
    const queue = bus.queue<number>('forever');
    // Bounded, so that where requeues spin in microtasks the test fails instead of hanging.
    const LIMIT = 20_000;
    let deliveries = 0;
    await queue.consume(async (m) => {
      deliveries++;
      if (deliveries < LIMIT) await m.requeue();
    });
    await Promise.all([1, 2, 3].map((n) => queue.send(n)));
    await until(() => deliveries > 30, 2000, 'thirty deliveries');
    await bus.close();
    const after = deliveries;
    await delay(20);
    expect(deliveries).toBe(after);
    expect(after).toBeLessThan(LIMIT);
  });
});
