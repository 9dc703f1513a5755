/**
 * Edges of the API: misspelt options fail instead of being ignored, and a destination named at
 * the documented maximum works, dead letters included.
 */
import { afterEach, describe, expect, it } from 'vitest';
import {
  type Bus,
  ConfigError,
  type ConnectOptions,
  connect,
  MAX_NAME_LENGTH,
  type Message,
  ValidationError,
} from '../src/index.js';
import { until } from './helpers.js';

const open: Bus[] = [];
afterEach(async () => {
  await Promise.allSettled(open.splice(0).map((b) => b.close()));
});
async function bus(): Promise<Bus> {
  const b = await connect(`memory://edges-${Math.random().toString(36).slice(2)}`);
  open.push(b);
  return b;
}

async function rejection(run: () => Promise<unknown>): Promise<unknown> {
  try {
    await run();
  } catch (error) {
    return error;
  }
  throw new Error('expected a rejection');
}

describe('unknown options are errors, not silently ignored', () => {
  it('connect() lists every unknown key, the known ones and the other problems, in one ConfigError', async () => {
    const options = {
      connectTimeout: 100,
      clientID: 'x',
      closeTimeoutMs: -1,
      sendBuffer: { maxMesages: 5 },
    } as unknown as ConnectOptions;
    const error = (await rejection(() => connect('memory://', options))) as ConfigError;
    expect(error).toBeInstanceOf(ConfigError);
    expect(error.issues).toHaveLength(4);
    expect(error.message).toContain('unknown option "connectTimeout"');
    expect(error.message).toContain('unknown option "clientID"');
    expect(error.message).toContain(
      'options.sendBuffer: unknown option "maxMesages"; known: maxMessages, timeoutMs',
    );
    expect(error.message).toMatch(/known: clientId, requires, logger, adapters, connectTimeoutMs/);
    expect(error.message).toContain('closeTimeoutMs');
  });

  it('connect() still takes every documented option', async () => {
    const b = await connect('memory://', {
      clientId: 'ok',
      requires: ['queue'],
      logger: { debug() {}, info() {}, warn() {}, error() {} },
      adapters: [],
      connectTimeoutMs: 1000,
      sendBuffer: { maxMessages: 1, timeoutMs: 1000 },
      closeTimeoutMs: 1000,
    });
    open.push(b);
  });

  it('consume(), subscribe(), read() and messages() refuse a misspelt option with a ValidationError', async () => {
    const b = await bus();
    const handler = async () => {};
    const cases: [string, () => Promise<unknown>, RegExp][] = [
      ['queue', () => b.queue('q').consume(handler, { concurency: 4 } as never), /concurency/],
      [
        'topic',
        () => b.topic('t').subscribe('a.b', handler, { durabel: 'x', maxAttempt: 2 } as never),
        /durabel.*maxAttempt|maxAttempt.*durabel/s,
      ],
      ['log', () => b.log('l').read(handler, { gruop: 'g' } as never), /gruop/],
      [
        'iterator',
        () =>
          b
            .queue('q2')
            .messages({ prefetc: 1 } as never)
            .next(),
        /prefetc/,
      ],
    ];
    for (const [kind, run, pattern] of cases) {
      const error = (await rejection(run)) as ValidationError;
      expect(error, kind).toBeInstanceOf(ValidationError);
      expect(error.message, kind).toMatch(pattern);
      expect(error.message, kind).toContain('known: concurrency, prefetch, signal, handlerTimeoutMs');
    }
    const topic = (await rejection(() =>
      b.topic('t').subscribe('a.b', handler, { durabel: 'x', maxAttempt: 2 } as never),
    )) as ValidationError;
    expect(topic.issues).toHaveLength(2);
    expect(topic.message).toContain('durable, maxAttempts, retryDelayMs, deadLetter');
  });

  it('the documented consumer options are all accepted', async () => {
    const b = await bus();
    const handler = async () => {};
    const signal = new AbortController().signal;
    const base = { concurrency: 2, prefetch: 4, signal, handlerTimeoutMs: 1000 };
    await b.queue('q').consume(handler, base);
    await b.topic('t').subscribe('a.*', handler, {
      ...base,
      durable: 'd',
      maxAttempts: 2,
      retryDelayMs: 1,
      deadLetter: 'dl',
    });
    await b.log('l').read(handler, { ...base, group: 'g', from: 'earliest' });
  });
});

describe('names at the documented maximum', () => {
  it(`a queue named with ${MAX_NAME_LENGTH} characters works, and its dead letters land in <name>.dlq`, async () => {
    const b = await bus();
    const name = 'q'.repeat(MAX_NAME_LENGTH);
    const queue = b.queue<string>(name, { maxAttempts: 1 });
    await queue.consume(async () => {
      throw new Error('boom');
    });
    await queue.send('poison');
    const dead: Message<string>[] = [];
    await b.queue<string>(`${name}.dlq`).consume(async (m) => void dead.push(m));
    await until(() => dead.length === 1, 5000, 'the dead letter');
    expect(dead[0]!.payload).toBe('poison');
  });

  it('a topic and a log at the limit take their default dead-letter queue too', async () => {
    const b = await bus();
    const name = 't'.repeat(MAX_NAME_LENGTH);
    expect(() => b.topic(name)).not.toThrow();
    expect(() => b.log(name)).not.toThrow();
    await b.topic(name).subscribe('a.b', async () => {});
  });

  it('one character more is refused, and so is a longer .dlq name', () => {
    return (async () => {
      const b = await bus();
      expect(() => b.queue('q'.repeat(MAX_NAME_LENGTH + 1))).toThrow(/limit is 200/);
      expect(() => b.queue(`${'q'.repeat(MAX_NAME_LENGTH + 1)}.dlq`)).toThrow(
        /limit is 200 \(204 with ".dlq"\)/,
      );
      expect(() => b.queue('q'.repeat(MAX_NAME_LENGTH - 4), { deadLetter: 'd'.repeat(201) })).toThrow(
        ValidationError,
      );
    })();
  });
});
