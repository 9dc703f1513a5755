import { channel, tracingChannel } from 'node:diagnostics_channel';
import { afterEach, describe, expect, it } from 'vitest';
import {
  CHANNELS,
  type ConnectionMessage,
  connect,
  memoryBroker,
  type ProcessContext,
  type SendContext,
  type SettleMessage,
} from '../src/index.js';
import { tracedEvents, until } from './helpers.js';

const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const cleanup of cleanups.splice(0)) cleanup();
});

const traceEvents = <C extends object>(name: string) => tracedEvents<C>(name, cleanups);

function listen<M>(name: string): M[] {
  const messages: M[] = [];
  const onMessage = (message: unknown) => messages.push(message as M);
  channel(name).subscribe(onMessage);
  cleanups.push(() => channel(name).unsubscribe(onMessage));
  return messages;
}

describe('diagnostics channels', () => {
  it('trace a send, and headers added at its start travel with the message', async () => {
    const sends = traceEvents<SendContext>(CHANNELS.send);
    const onStart = (context: unknown) => {
      (context as SendContext).headers.traceparent = '00-abc-def-01';
    };
    tracingChannel(CHANNELS.send).start.subscribe(onStart);
    cleanups.push(() => tracingChannel(CHANNELS.send).start.unsubscribe(onStart));
    const bus = await connect('memory://diag-send');
    const queue = bus.queue<string>('q');
    const { id } = await queue.send('hi', { key: 'k', headers: { a: '1' } });
    const got: Record<string, string>[] = [];
    await queue.consume((m) => {
      got.push({ ...m.headers });
    });
    await until(() => got.length === 1);
    expect(got[0]).toEqual({ a: '1', traceparent: '00-abc-def-01' });
    expect(sends.map((e) => e.event)).toEqual(['start', 'end', 'asyncStart', 'asyncEnd']);
    expect(sends[0]!.context).toMatchObject({
      adapter: 'memory',
      kind: 'queue',
      operation: 'send',
      destination: 'q',
      id,
      key: 'k',
      bodySize: 4,
    });
    const appended = await bus.log('l').append('x');
    expect(sends.at(-1)!.context.position).toEqual(appended.position);
    await bus.close();
  });

  it('trace each handler run with its attempt and outcome, run it in the given scope, and publish settlements', async () => {
    const runs = traceEvents<ProcessContext>(CHANNELS.process);
    const settles = listen<SettleMessage>(CHANNELS.settle);
    let scoped = 0;
    const onStart = (context: unknown) => {
      (context as ProcessContext).scope = (run) => {
        scoped++;
        return run();
      };
    };
    tracingChannel(CHANNELS.process).start.subscribe(onStart);
    cleanups.push(() => tracingChannel(CHANNELS.process).start.unsubscribe(onStart));
    const bus = await connect('memory://diag-process');
    const queue = bus.queue<number>('q', { maxAttempts: 2 });
    let calls = 0;
    await queue.consume((m) => {
      calls++;
      if (m.payload === 2 || m.attempt === 1) throw new Error(`fail ${m.payload}`);
    });
    await queue.send(1);
    await until(() => settles.filter((s) => s.outcome === 'ack').length === 1);
    await queue.send(2);
    await until(() => settles.some((s) => s.outcome === 'deadLetter'));
    const ends = runs.filter((e) => e.event === 'asyncEnd').map((e) => e.context);
    expect(ends.map((c) => [c.attempt, c.outcome])).toEqual([
      [1, 'retry'],
      [2, 'ack'],
      [1, 'retry'],
      [2, 'deadLetter'],
    ]);
    expect(ends.map((c) => (c.failure as Error | undefined)?.message)).toEqual([
      'fail 1',
      undefined,
      'fail 2',
      'fail 2',
    ]);
    expect(scoped).toBe(calls);
    expect(settles.map((s) => s.outcome)).toEqual(['retry', 'ack', 'retry', 'deadLetter']);
    expect(settles.at(-1)).toMatchObject({ deadLetter: 'q.dlq', reason: 'fail 2', attempt: 2 });
    await bus.close();
  });

  it('publish connection state changes', async () => {
    const states = listen<ConnectionMessage>(CHANNELS.connection);
    const bus = await connect('memory://diag-state');
    await memoryBroker('diag-state').restart(10);
    await bus.close();
    expect(states.map((s) => s.state)).toEqual(['connected', 'reconnecting', 'connected', 'closed']);
    expect(states[1]!.error?.message).toMatch(/restarting/);
  });
});
