/**
 * A queue named at the documented maximum (200 characters) works on RabbitMQ, dead letters
 * included: `<name>.dlq` is 204 characters, under RabbitMQ's 255-byte limit.
 */
import { waitFor } from '@omnibus/contract';
import { MAX_NAME_LENGTH } from '@omnibus/core';
import { describe, expect, it } from 'vitest';
import { openBuses, unavailable } from './broker.js';

const skip = await unavailable();

describe.skipIf(skip !== undefined)('rabbitmq: names at the limit', () => {
  const open = openBuses();

  it(`a ${MAX_NAME_LENGTH}-character queue delivers, and its poison message reaches <name>.dlq`, async () => {
    const bus = await open();
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
    await waitFor(() => seen.length === 2 && dead.length === 1, 'delivery and the dead letter', 20_000);
    expect(dead).toEqual(['poison']);
  });
});
