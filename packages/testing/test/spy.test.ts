import { connect } from '@omnibus/core';
import { createSpy, createTestBus, SpyTimeoutError, spy } from '@omnibus/testing';
import { afterEach, describe, expect, it, vi } from 'vitest';

afterEach(() => {
  vi.useRealTimers();
});

describe('spy', () => {
  it('awaits a message acked, with its attempts and history', async () => {
    await using bus = await createTestBus();
    await using watch = spy(bus);
    const orders = bus.queue<{ n: number }>('orders');
    await orders.consume((m) => {
      if (m.attempt === 1) throw new Error('flaky');
    });
    const { id } = await orders.send({ n: 1 });
    const acked = await watch.waitFor({ id, outcome: 'acked' });
    expect(acked).toMatchObject({ id, destination: 'orders', kind: 'queue', outcome: 'acked', attempts: 2 });
    expect(acked.history.map((h) => [h.outcome, h.attempt, h.reason])).toEqual([
      ['retried', 1, 'flaky'],
      ['acked', 2, undefined],
    ]);
    const sent = await watch.waitFor({ id, outcome: 'sent' });
    expect(sent.record).toMatchObject({ kind: 'queue', destination: 'orders' });
    expect(watch.sent.map((s) => s.id)).toContain(id);
  });

  it('awaits a dead letter, and matches on where', async () => {
    await using bus = await createTestBus();
    using watch = spy(bus);
    const orders = bus.queue<string>('orders', { maxAttempts: 2 });
    await orders.consume((m) => {
      if (m.payload === 'poison') throw new Error(`cannot handle ${m.payload}`);
    });
    await orders.send('fine');
    await orders.send('poison', { headers: { tenant: 't-1' } });
    const dead = await watch.waitFor({
      outcome: 'deadLettered',
      where: (r) => r.headers.tenant === 't-1',
    });
    expect(dead.attempts).toBe(2);
    expect(dead.record).toMatchObject({
      deadLetter: 'orders.dlq',
      reason: 'cannot handle poison',
      attempt: 2,
    });
    expect(watch.handled.filter((h) => h.outcome === 'acked')).toHaveLength(1);
  });

  it('times out naming what it waited for and what it saw', async () => {
    await using bus = await createTestBus();
    using watch = spy(bus);
    await bus.queue('orders').send('x');
    const error = await watch
      .waitFor({ destination: 'orders', outcome: 'acked' }, { timeoutMs: 50 })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(SpyTimeoutError);
    expect((error as Error).message).toMatch(
      /timed out after 50 ms waiting for \{ outcome: 'acked', destination: 'orders' \}; it saw:\n {2}- sent queue "orders"/,
    );
  });

  it('sees only its bus; createSpy() sees every bus', async () => {
    await using a = await createTestBus();
    await using b = await connect(`memory://spy-other-${Date.now()}`);
    using onA = spy(a);
    using onB = spy(b);
    using all = createSpy();
    await a.queue('q').send('from a');
    await b.queue('q').send('from b');
    expect(onA.sent).toHaveLength(1);
    expect(onB.sent).toHaveLength(1);
    expect(all.sent.length).toBeGreaterThanOrEqual(2);
    expect(() => spy({})).toThrow(/createSpy/);
  });

  it('works with fake timers: a retry delay passes when the test advances time', async () => {
    vi.useFakeTimers();
    await using bus = await createTestBus();
    using watch = spy(bus);
    const orders = bus.queue<string>('orders', { retryDelayMs: 60_000 });
    await orders.consume((m) => {
      if (m.attempt === 1) throw new Error('not yet');
    });
    const { id } = await orders.send('x');
    await watch.waitFor({ id, outcome: 'retried' });
    const acked = watch.waitFor({ id, outcome: 'acked' });
    await vi.advanceTimersByTimeAsync(60_000);
    expect((await acked).attempts).toBe(2);
  });

  it('stopping rejects the waits under way; disposal stops it', async () => {
    const bus = await createTestBus();
    const watch = spy(bus);
    const pending = watch.waitFor({ outcome: 'acked' });
    await watch[Symbol.asyncDispose]();
    await expect(pending).rejects.toThrow(/the spy was stopped/);
    await bus.queue('q').send('after');
    expect(watch.sent).toHaveLength(0);
    await bus.close();
  });
});
