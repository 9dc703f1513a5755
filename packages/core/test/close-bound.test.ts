import { describe, expect, it } from 'vitest';
import type { Adapter, Subscription } from '../src/index.js';
import { connect } from '../src/index.js';
import { memoryAs } from './helpers.js';

/** The memory adapter, except that its consumers never finish closing (a broker that does not answer). */
const stuck = memoryAs('stuck', (inner) => ({
  consume: async (...args: Parameters<Adapter['consume']>): Promise<Subscription> => {
    await inner.consume(...args);
    return { close: () => new Promise<void>(() => undefined) };
  },
}));

describe('closing a consumer', () => {
  it('does not hang on an adapter that cannot close its subscription: it reports a TimeoutError', async () => {
    const bus = await connect('stuck://x', { adapters: [stuck], closeTimeoutMs: 200 });
    const errors: Error[] = [];
    bus.on('error', (e) => errors.push(e));
    const consumer = await bus.queue('q').consume(() => undefined);
    const started = Date.now();
    await consumer.close();
    expect(Date.now() - started).toBeLessThan(5000);
    expect(errors.map((e) => e.name)).toEqual(['TimeoutError']);
    expect(errors[0]!.message).toMatch(/did not close its subscription within 200 ms/);
    await bus.close();
  });
});
