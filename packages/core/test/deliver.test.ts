/**
 * What `deliver` returns to an adapter: a thenable (no promise per delivery) that settles once core
 * has settled the delivery. Pull-based adapters (Kafka) wait on it for back-pressure; here a
 * wrapper around the in-memory adapter keeps what each `deliver` returned.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { type AdapterFactory, connect, type Deliver, memory, type Settled } from '../src/index.js';
import { until } from './helpers.js';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** The in-memory adapter, with every `deliver` result kept in `returned`. */
function recording(returned: Settled[]): AdapterFactory {
  const inner = memory();
  return {
    ...inner,
    async create(target, context) {
      const adapter = await inner.create(target, context);
      const consume = adapter.consume.bind(adapter);
      adapter.consume = (queue, spec, deliver: Deliver) =>
        consume(queue, spec, (delivery) => {
          const settled = deliver(delivery);
          returned.push(settled);
          return settled;
        });
      return adapter;
    },
  };
}

let n = 0;
async function bus(returned: Settled[]) {
  const b = await connect(`memory://deliver-${process.pid}-${n++}`, { adapters: [recording(returned)] });
  cleanups.push(() => b.close());
  return b;
}

describe("deliver's result", () => {
  it('settles after the handler settled the message, for every waiter, and at once for a late one', async () => {
    const returned: Settled[] = [];
    const b = await bus(returned);
    const queue = b.queue<string>('q');
    let open!: () => void;
    const gate = new Promise<void>((resolve) => {
      open = resolve;
    });
    await queue.consume(async () => gate);
    await queue.send('a');
    await until(() => returned.length === 1, 5000, 'the delivery');
    const order: string[] = [];
    returned[0]!.then(() => order.push('first'));
    returned[0]!.then(() => order.push('second'));
    const awaited = (async () => {
      await returned[0];
      order.push('awaited');
    })();
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(order).toEqual([]);
    open();
    await awaited;
    expect(order).toEqual(['first', 'second', 'awaited']);
    expect(b.health().consumers[0]!.handled).toBe(1);
    let late = false;
    returned[0]!.then(() => {
      late = true;
    });
    expect(late).toBe(true);
  });

  it('settles when a message is retried, once its copy is sent', async () => {
    const returned: Settled[] = [];
    const b = await bus(returned);
    const queue = b.queue<string>('q', { maxAttempts: 2, retryDelayMs: 0 });
    const attempts: number[] = [];
    await queue.consume((m) => {
      attempts.push(m.attempt);
      if (m.attempt === 1) throw new Error('again');
    });
    await queue.send('a');
    await until(() => attempts.length === 2, 5000, 'the second attempt');
    const settled = await Promise.race([
      (async () => {
        for (const r of returned) await r;
        return true;
      })(),
      new Promise<false>((resolve) => setTimeout(() => resolve(false), 2000)),
    ]);
    expect(settled).toBe(true);
    expect(attempts).toEqual([1, 2]);
  });
});
