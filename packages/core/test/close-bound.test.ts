import { describe, expect, it } from 'vitest';
import type { Adapter, AdapterFactory, Subscription } from '../src/index.js';
import { connect, memory } from '../src/index.js';

/** The memory adapter, except that its consumers never finish closing (a broker that does not answer). */
const stuck: AdapterFactory = {
  name: 'stuck',
  schemes: ['stuck'],
  hostOptional: true,
  async create(target, context) {
    const adapter = await memory().create({ ...target, options: {} }, context);
    return new Proxy(adapter, {
      get: (inner, key) =>
        key === 'consume'
          ? async (...args: Parameters<Adapter['consume']>): Promise<Subscription> => {
              await inner.consume(...args);
              return { close: () => new Promise<void>(() => undefined) };
            }
          : Reflect.get(inner, key),
    }) as Adapter;
  },
};

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
