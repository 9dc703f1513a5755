import { ConnectionError, type Message } from '@omnibus/core';
import { createTestBus, spy } from '@omnibus/testing';
import { afterEach, describe, expect, it, vi } from 'vitest';

afterEach(() => {
  vi.useRealTimers();
});

/** A handler that records what it gets. */
function recorder<T>() {
  const got: Message<T>[] = [];
  return { got, handler: (m: Message<T>) => void got.push(m) };
}

describe('faults', () => {
  it('duplicate: the same message reaches the handler twice, the second marked redelivered', async () => {
    await using bus = await createTestBus({ faults: { duplicate: 1 }, seed: 1 });
    using watch = spy(bus);
    const { got, handler } = recorder<string>();
    await bus.queue<string>('payments').consume(handler);
    const { id } = await bus.queue('payments').send('charge');
    await watch.waitFor({ id, outcome: 'acked', where: () => got.length === 2 });
    expect(got.map((m) => [m.id, m.redelivered])).toEqual([
      [id, false],
      [id, true],
    ]);
    expect(bus.faults.injected).toContainEqual({ fault: 'duplicate', destination: 'payments', id });
  });

  it('lostAck: an acked message comes back, redelivered', async () => {
    await using bus = await createTestBus({ faults: { destinations: { jobs: { lostAck: 1 } } } });
    using watch = spy(bus);
    const { got, handler } = recorder<string>();
    await bus.queue<string>('jobs').consume((m) => {
      handler(m);
      if (got.length === 2) bus.faults.set({}, 'jobs'); // only the first ack is lost
    });
    const { id } = await bus.queue('jobs').send('x');
    await watch.waitFor({ id, outcome: 'acked', where: () => got.length === 2 });
    expect(got.map((m) => m.redelivered)).toEqual([false, true]);
    expect(bus.broker.queue('jobs').depth).toBe(0);
  });

  it('reorder: unkeyed messages arrive out of send order; a key keeps its order', async () => {
    await using bus = await createTestBus({ faults: { reorder: 0.5 }, seed: 42 });
    using watch = spy(bus);
    const queue = bus.queue<{ key: string | undefined; n: number }>('events');
    for (let n = 0; n < 20; n++) await queue.send({ key: undefined, n });
    for (let n = 0; n < 20; n++) await queue.send({ key: 'k', n }, { key: 'k' });
    const { got, handler } = recorder<{ key: string | undefined; n: number }>();
    await queue.consume(handler, { prefetch: 100 });
    await watch.waitFor({ outcome: 'acked', where: () => got.length === 40 });
    const unkeyed = got.filter((m) => m.payload.key === undefined).map((m) => m.payload.n);
    const keyed = got.filter((m) => m.payload.key === 'k').map((m) => m.payload.n);
    expect(unkeyed).not.toEqual([...unkeyed].sort((a, b) => a - b));
    expect([...unkeyed].sort((a, b) => a - b)).toEqual([...Array(20).keys()]);
    expect(keyed).toEqual([...Array(20).keys()]);
  });

  it('delayMs: deliveries arrive late, in order (with fake timers)', async () => {
    vi.useFakeTimers();
    await using bus = await createTestBus({ faults: { delayMs: 500 } });
    const { got, handler } = recorder<number>();
    await bus.queue<number>('slow').consume(handler);
    await bus.queue('slow').send(1);
    await bus.queue('slow').send(2);
    await vi.advanceTimersByTimeAsync(499);
    expect(got).toHaveLength(0);
    await vi.advanceTimersByTimeAsync(1);
    expect(got.map((m) => m.payload)).toEqual([1, 2]);
  });

  it('failSends: core retries a retriable ConnectionError; past the send timeout the caller gets it', async () => {
    await using bus = await createTestBus({ connect: { sendBuffer: { timeoutMs: 300 } } });
    using watch = spy(bus);
    bus.faults.failSends(2, { destination: 'orders' });
    const { id } = await bus.queue('orders').send('eventually');
    await watch.waitFor({ id, outcome: 'sent' });
    expect(bus.faults.injected.filter((f) => f.fault === 'failSend')).toHaveLength(2);

    bus.faults.failSends(1000);
    const error = await bus
      .queue('orders')
      .send('never')
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ConnectionError);
    expect((error as ConnectionError).retriable).toBe(true);
    expect(watch.sent).toHaveLength(1);
  });

  it('disconnect: state events, a send during the outage waits and is delivered after', async () => {
    await using bus = await createTestBus();
    using watch = spy(bus);
    const states: string[] = [];
    bus.on('state', (state) => void states.push(state));
    await bus.queue('q').consume(() => undefined);
    const outage = bus.faults.disconnect(50);
    const { id } = await bus.queue('q').send('buffered');
    await outage;
    await watch.waitFor({ id, outcome: 'acked' });
    expect(states).toEqual(['reconnecting', 'connected']);
  });

  it('rebalance: a record in flight when its group rebalances is read again', async () => {
    await using bus = await createTestBus();
    using watch = spy(bus);
    const audit = bus.log<string>('audit');
    let release!: () => void;
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    const seen: string[] = [];
    await audit.read(
      async (m) => {
        seen.push(`${m.payload}@${m.position.offset}`);
        if (seen.length === 1) await gate;
      },
      { group: 'auditor', from: 'earliest' },
    );
    await audit.append('a');
    await vi.waitFor(() => expect(seen).toHaveLength(1));
    expect(bus.faults.rebalance('audit', 'auditor')).toBe(true);
    release();
    await watch.waitFor({ outcome: 'acked', where: () => seen.length === 2 });
    expect(seen).toEqual(['a@0', 'a@0']);
    expect(bus.faults.rebalance('audit', 'nobody')).toBe(false);
  });

  it('slowAckMs: the next message waits for the slow ack (with fake timers)', async () => {
    vi.useFakeTimers();
    await using bus = await createTestBus({ faults: { slowAckMs: 1000 } });
    const { got, handler } = recorder<number>();
    await bus.queue<number>('q').consume(handler, { concurrency: 1 });
    await bus.queue('q').send(1);
    await bus.queue('q').send(2);
    await vi.advanceTimersByTimeAsync(10);
    expect(got.map((m) => m.payload)).toEqual([1]);
    await vi.advanceTimersByTimeAsync(1000);
    expect(got.map((m) => m.payload)).toEqual([1, 2]);
    // Closing waits for the second ack: let it through (fake timers hold it otherwise).
    await vi.advanceTimersByTimeAsync(1000);
  });

  it('the same seed injects the same faults', async () => {
    const run = async (seed: number) => {
      await using bus = await createTestBus({ faults: { duplicate: 0.3, reorder: 0.3 }, seed });
      using watch = spy(bus);
      const q = bus.queue<number>('q');
      for (let n = 0; n < 30; n++) await q.send(n);
      const { got, handler } = recorder<number>();
      await q.consume(handler, { prefetch: 100 });
      await watch.waitFor({ outcome: 'acked', where: () => got.length >= 30 + countDuplicates() });
      function countDuplicates() {
        return bus.faults.injected.filter((f) => f.fault === 'duplicate').length;
      }
      return { faults: bus.faults.injected.map((f) => f.fault), order: got.map((m) => m.payload) };
    };
    const first = await run(7);
    expect(await run(7)).toEqual(first);
    expect(first.faults.length).toBeGreaterThan(0);
  });

  it('reset() empties the broker and reconnects', async () => {
    await using bus = await createTestBus();
    await bus.queue('q').send('left over');
    expect(bus.broker.queue('q').depth).toBe(1);
    await bus.reset();
    expect(bus.broker.queue('q').depth).toBe(0);
    expect(bus.closed).toBe(false);
  });
});
