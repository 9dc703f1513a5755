import { describe, expect, it } from 'vitest';
import { connect, delay, type SettleEvent } from '../src/index.js';
import { until } from './helpers.js';

describe('bus events and consumer health', () => {
  it('emits retry and deadLetter events and counts them per consumer', async () => {
    const bus = await connect('memory://health-events');
    const retries: SettleEvent[] = [];
    const deadLetters: SettleEvent[] = [];
    bus.on('retry', (e) => retries.push(e));
    bus.on('deadLetter', (e) => deadLetters.push(e));
    const queue = bus.queue<number>('q', { maxAttempts: 2 });
    await queue.consume((m) => {
      if (m.payload > 0) throw new Error(`bad ${m.payload}`);
    });
    await queue.send(0);
    const { id } = await queue.send(1);
    await until(() => deadLetters.length === 1);
    expect(retries).toEqual([
      expect.objectContaining({
        kind: 'queue',
        destination: 'q',
        id,
        attempt: 1,
        reason: 'bad 1',
        delayMs: 0,
      }),
    ]);
    expect(deadLetters).toEqual([
      expect.objectContaining({ id, attempt: 2, reason: 'bad 1', deadLetter: 'q.dlq' }),
    ]);
    const health = bus.health().consumers[0]!;
    expect(health).toMatchObject({ handled: 1, retried: 1, deadLettered: 1, inFlight: 0 });
    expect(health.lastProgressAt).toBeInstanceOf(Date);
    expect(health.longestRunningMs).toBeUndefined();
    await bus.close();
  });

  it('shows how long a stuck handler has been running', async () => {
    const bus = await connect('memory://health-stuck');
    let release: () => void = () => undefined;
    const stuck = new Promise<void>((resolve) => {
      release = resolve;
    });
    const topic = bus.topic<string>('t');
    await topic.subscribe('#', () => stuck, { durable: 'billing' });
    const started = Date.now();
    await topic.publish('x');
    await until(() => bus.health().consumers[0]!.inFlight === 1);
    await delay(50);
    const health = bus.health().consumers[0]!;
    expect(health.consumer).toBe('billing');
    expect(health.longestRunningMs).toBeGreaterThanOrEqual(40);
    expect(health.longestRunningMs).toBeLessThanOrEqual(Date.now() - started);
    expect(health.handled).toBe(0);
    release();
    await until(() => bus.health().consumers[0]!.handled === 1);
    await bus.close();
  });
});
