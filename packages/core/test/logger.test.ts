import { Writable } from 'node:stream';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { connect, type Logger } from '../src/index.js';
import { until } from './helpers.js';

function pinoLines() {
  const lines: Record<string, unknown>[] = [];
  const stream = new Writable({
    write(chunk, _encoding, done) {
      for (const line of String(chunk).split('\n')) if (line !== '') lines.push(JSON.parse(line));
      done();
    },
  });
  return { logger: pino({ level: 'debug' }, stream), lines };
}

describe('logger', () => {
  it('takes a pino logger as it is: fields recorded, bound to the adapter', async () => {
    const { logger, lines } = pinoLines();
    const bus = await connect('memory://log-pino', { logger });
    const queue = bus.queue<number>('q', { maxAttempts: 2 });
    await queue.consume(() => {
      throw new Error('nope');
    });
    const { id } = await queue.send(1);
    await until(() => lines.some((l) => String(l.msg).includes('dead-lettered')));
    const retry = lines.find((l) => String(l.msg).includes('retrying'));
    expect(retry).toMatchObject({ level: 20, adapter: 'memory', destination: 'q', id, attempt: 1 });
    const dead = lines.find((l) => String(l.msg).includes('dead-lettered'));
    expect(dead).toMatchObject({ level: 40, adapter: 'memory', id, reason: 'nope', deadLetter: 'q.dlq' });
    await bus.close();
    expect(lines.find((l) => l.state === 'closed')).toMatchObject({
      adapter: 'memory',
      msg: 'omnibus closed',
    });
  });

  it('binds the adapter into the fields of a logger without child()', async () => {
    const calls: [string, Record<string, unknown>, string][] = [];
    const record =
      (level: string) =>
      (fields: Record<string, unknown>, message: string): void => {
        calls.push([level, fields, message]);
      };
    const plain: Logger = {
      debug: record('debug'),
      info: record('info'),
      warn: record('warn'),
      error: record('error'),
    };
    const bus = await connect('memory://log-plain', { logger: plain });
    await bus.close();
    expect(calls).toContainEqual(['info', { adapter: 'memory', state: 'connected' }, 'omnibus connected']);
  });
});
