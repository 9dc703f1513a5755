/**
 * A queue named at the documented maximum (200 characters) works on RabbitMQ, dead letters
 * included: `<name>.dlq` is 204 characters, under RabbitMQ's 255-byte limit.
 */
import { type Bus, connect, MAX_NAME_LENGTH } from '@omnibus/core';
import { afterEach, describe, expect, it } from 'vitest';
import { rabbitmq } from '../src/index.js';
import { AMQP_URL, unavailable } from './broker.js';

const skip = await unavailable();

async function waitFor(condition: () => boolean, what: string, timeoutMs = 20_000): Promise<void> {
  const dueAt = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > dueAt) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

describe.skipIf(skip !== undefined)('rabbitmq: names at the limit', () => {
  const open: Bus[] = [];
  afterEach(async () => {
    await Promise.allSettled(open.splice(0).map((b) => b.close()));
  });

  it(`a ${MAX_NAME_LENGTH}-character queue delivers, and its poison message reaches <name>.dlq`, async () => {
    const bus = await connect(AMQP_URL, { adapters: [rabbitmq()] });
    open.push(bus);
    const id = Math.random().toString(36).slice(2, 10);
    const name = `names-${id}-`.padEnd(MAX_NAME_LENGTH, 'x');
    expect(name).toHaveLength(MAX_NAME_LENGTH);
    const queue = bus.queue<string>(name, { maxAttempts: 1 });
    const seen: string[] = [];
    await queue.consume(async (m) => {
      seen.push(m.payload);
      if (m.payload === 'poison') throw new Error('boom');
    });
    const dead: string[] = [];
    await bus.queue<string>(`${name}.dlq`).consume(async (m) => void dead.push(m.payload));
    await queue.send('fine');
    await queue.send('poison');
    await waitFor(
      () => seen.length === 2 && dead.length === 1,
      `delivery and the dead letter (${seen}, ${dead})`,
    );
    expect(dead).toEqual(['poison']);
  });
});
