/**
 * What the contract suite cannot see from outside: frames a consumer held unsettled when it went
 * away (a broker restart, a handler past its close timeout) are given to the next consumer.
 */
import { randomBytes } from 'node:crypto';
import { waitFor } from '@omnibus/contract';
import { connect, HEADER, type Message } from '@omnibus/core';
import { describe, expect, it } from 'vitest';
import { loopbackBroker, Queue } from '../src/index.js';

describe('loopback broker', () => {
  it('redelivers a message that was unacked when the broker restarted', async () => {
    const name = `restart-${randomBytes(4).toString('hex')}`;
    const bus = await connect(`loopback://${name}`);
    const seen: Message<string>[] = [];
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    await bus.queue<string>('work').consume(async (m) => {
      seen.push(m);
      if (seen.length === 1) await held;
    });
    await bus.queue<string>('work').send('in flight');
    await waitFor(() => seen.length === 1, 'the first message', 5000);
    await loopbackBroker(name).restart();
    release();
    await waitFor(() => seen.length === 2, 'the second message', 5000);
    expect(seen.map((m) => [m.payload, m.redelivered])).toEqual([
      ['in flight', false],
      ['in flight', true],
    ]);
    expect(seen[1]!.id).toBe(seen[0]!.id);
    await bus.close();
  });

  it('handles a foreign frame (no envelope): an id at receipt, a poison body dead-lettered with its headers', async () => {
    const name = `foreign-${randomBytes(4).toString('hex')}`;
    const bus = await connect(`loopback://${name}`);
    const good: Message<unknown>[] = [];
    const dead: Message<Uint8Array>[] = [];
    await bus.queue('in').consume((m) => void good.push(m));
    await bus.queue<Uint8Array>('in.dlq', { codec: 'bytes' }).consume((m) => void dead.push(m));
    // As another producer on the broker's own client puts them: bytes and its own headers only.
    const foreign = (text: string) => ({
      body: new TextEncoder().encode(text),
      headers: { origin: 'legacy' },
    });
    loopbackBroker(name).queue('in').put(foreign('{not json'));
    loopbackBroker(name).queue('in').put(foreign('{"ok":true}'));
    await waitFor(() => good.length === 1 && dead.length === 1, 'the good message and the dead letter', 5000);
    expect(good[0]!.payload).toEqual({ ok: true });
    expect(good[0]!.id).toMatch(/./);
    expect(good[0]!.headers.origin).toBe('legacy');
    expect(new TextDecoder().decode(dead[0]!.payload)).toBe('{not json');
    expect(dead[0]!.headers.origin).toBe('legacy');
    expect(dead[0]!.headers[HEADER.deadLetterReason]).toMatch(/JSON/);
    await bus.close();
  });

  it('puts a requeued frame back in its place, ahead of later ones', () => {
    const queue = new Queue('queue/order');
    const got: [string, boolean, number][] = [];
    const consumer = {
      credit: 1,
      push: (frame: { body: Uint8Array }, redelivered: boolean, tag: number) =>
        got.push([new TextDecoder().decode(frame.body), redelivered, tag]),
    };
    for (const text of ['a', 'b', 'c']) queue.put({ body: new TextEncoder().encode(text), headers: {} });
    queue.attach(consumer);
    queue.requeue(got[0]![2]);
    queue.ack(got[1]![2]);
    expect(got.map(([text, redelivered]) => [text, redelivered])).toEqual([
      ['a', false],
      ['a', true],
      ['b', false],
    ]);
  });
});
