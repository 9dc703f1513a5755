import { describe, expect, it } from 'vitest';
import {
  type AdapterFactory,
  type Capabilities,
  ConfigError,
  connect,
  MEMORY_CAPABILITIES,
  memory,
  NO_ADMIN,
  registerAdapter,
  UnsupportedCapabilityError,
} from '../src/index.js';
import { memoryAs } from './helpers.js';

async function configError(run: () => Promise<unknown>): Promise<ConfigError> {
  try {
    await run();
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).code).toBe('OMNIBUS_CONFIG');
    return error as ConfigError;
  }
  throw new Error('expected a ConfigError');
}

describe('connect: configuration', () => {
  it('defaults to the in-memory broker', async () => {
    const bus = await connect();
    expect(bus.adapter).toBe('memory');
    expect(bus.capabilities).toEqual(MEMORY_CAPABILITIES);
    await bus.close();
  });

  it('rejects an unknown scheme and lists the known ones', async () => {
    const error = await configError(() => connect('redis://localhost'));
    expect(error.message).toMatch(/unknown scheme "redis:\/\/"/);
    expect(error.message).toContain('kafka://');
  });

  it('rejects a malformed URL and a URL without a host', async () => {
    await configError(() => connect('not a url'));
    const error = await configError(() => connect('amqp://'));
    expect(error.message).toMatch(/has no host/);
  });

  it('names the adapter package to install when it is missing', async () => {
    // An adapter no workspace package provides (every built-in scheme now has its package here).
    const error = await configError(() => connect({ adapter: 'nosuch', url: 'nosuch://localhost' } as never));
    expect(error.message).toMatch(/no installed adapter serves nosuch:\/\/.*@omnibus\/adapter-nosuch/);
  });

  it('reports every problem in one error, URL and options together', async () => {
    const error = await configError(() =>
      connect('kafka://', {
        clientId: 'has spaces',
        connectTimeoutMs: -1,
        sendBuffer: { timeoutMs: Number.NaN },
        requires: ['teleport' as 'queue'],
      }),
    );
    expect(error.issues.length).toBe(5);
    expect(error.message).toMatch(/no host/);
    expect(error.message).toMatch(/clientId/);
    expect(error.message).toMatch(/connectTimeoutMs/);
    expect(error.message).toMatch(/sendBuffer.timeoutMs/);
    expect(error.message).toMatch(/requires/);
  });

  it('rejects negative, fractional and NaN adapter options from the URL', async () => {
    for (const value of ['-1', 'NaN', '1.5', 'lots']) {
      const error = await configError(() => connect(`memory://cfg?maxQueueLength=${value}`));
      expect(error.message).toMatch(/maxQueueLength/);
    }
    const unknown = await configError(() => connect('memory://cfg?maxQueueLenght=5'));
    expect(unknown.message).toMatch(/maxQueueLenght/);
  });

  it('never puts a password in an error', async () => {
    const error = await configError(() => connect('amqp://guest:hunter2@:5672'));
    expect(error.message).not.toContain('hunter2');
    const object = await configError(() =>
      connect({ adapter: 'memory', url: 'kafka://u:hunter2@host:9092' } as unknown as { adapter: 'memory' }),
    );
    expect(object.message).not.toContain('hunter2');
    expect(object.message).toMatch(/is a kafka URL/);
  });

  it('accepts the object form and validates it like a URL', async () => {
    const bus = await connect({ adapter: 'memory', url: 'memory://object-form', maxQueueLength: 3 });
    const queue = bus.queue('q');
    for (let i = 0; i < 3; i++) await queue.send(i);
    await expect(queue.send(3)).rejects.toMatchObject({ code: 'OMNIBUS_CAPACITY', limit: 3 });
    await bus.close();
    await configError(() => connect({ adapter: 'memory', maxQueueLength: 0 }));
  });

  it('uses an adapter passed explicitly or registered, before loading a package', async () => {
    const make = (name: string): AdapterFactory => {
      const inner = memory();
      return {
        name,
        schemes: ['amqp'],
        create: (target, context) => inner.create({ ...target, options: {} }, context),
      };
    };
    const explicit = await connect('amqp://localhost', { adapters: [make('explicit')] });
    expect(explicit.adapter).toBe('memory');
    await explicit.close();
    registerAdapter(make('registered'));
    const registered = await connect('amqp://localhost');
    expect(registered.adapter).toBe('memory');
    await registered.close();
  });
});

describe('connect: capabilities', () => {
  const NONE: Capabilities = {
    queue: 'native',
    topic: 'native',
    log: 'native',
    priority: 'none',
    replay: 'none',
    routing: 'none',
    deadLetter: 'emulated',
    delay: 'none',
    headers: 'none',
    durableSubscriptions: 'none',
    consumerGroups: 'none',
    ...NO_ADMIN,
    ordering: 'none',
    limits: {},
  };
  /** The memory adapter with flags turned off: proves that core, not the adapter, refuses. */
  const limited = memoryAs('limited', () => ({ capabilities: NONE, name: 'limited' }));

  it('fails at connect with every missing requirement listed', async () => {
    const error = await connect('limited://', {
      adapters: [limited],
      requires: { replay: 'native', priority: 'emulated', queue: 'native', deadLetter: 'native' },
    }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(UnsupportedCapabilityError);
    expect((error as UnsupportedCapabilityError).missing.map((m) => m.feature)).toEqual([
      'replay',
      'priority',
      'deadLetter',
    ]);
    expect((error as Error).message).toMatch(/replay \(needs native, limited has none\)/);
  });

  it('throws UnsupportedCapabilityError at each use of a feature marked none', async () => {
    const bus = await connect('limited://', { adapters: [limited] });
    const unsupported = { name: 'UnsupportedCapabilityError', code: 'OMNIBUS_UNSUPPORTED' };
    await expect(bus.queue('q').send(1, { priority: 1 })).rejects.toMatchObject(unsupported);
    await expect(bus.queue('q').send(1, { delayMs: 10 })).rejects.toMatchObject(unsupported);
    await expect(bus.queue('q').send(1, { headers: { a: 'b' } })).rejects.toMatchObject(unsupported);
    expect(() => bus.queue('q', { maxPriority: 3 })).toThrow(UnsupportedCapabilityError);
    await expect(bus.log('l').read(() => undefined, { from: 'earliest' })).rejects.toMatchObject(unsupported);
    await expect(bus.log('l').read(() => undefined, { group: 'g', from: 'latest' })).rejects.toMatchObject(
      unsupported,
    );
    await expect(bus.topic('t').subscribe('a.*', () => undefined)).rejects.toMatchObject(unsupported);
    await expect(bus.topic('t').subscribe('a.#', () => undefined)).rejects.toMatchObject(unsupported);
    await expect(bus.topic('t').subscribe('#', () => undefined, { durable: 'd' })).rejects.toMatchObject(
      unsupported,
    );
    await expect(bus.queue('q').depth()).rejects.toMatchObject(unsupported);
    await expect(bus.queue('q').purge()).rejects.toMatchObject(unsupported);
    await expect(bus.deadLetters({ queue: 'q' }).count()).rejects.toMatchObject(unsupported);
    await expect(bus.deadLetters({ queue: 'q' }).peek()).rejects.toMatchObject(unsupported);
    await expect(bus.deadLetters({ queue: 'q' }).redrive()).rejects.toMatchObject(unsupported);
    await expect(bus.topic('t').deleteSubscription('d')).rejects.toMatchObject(unsupported);
    await expect(bus.log('l').resetGroup('g', 'earliest')).rejects.toMatchObject(unsupported);
    await expect(bus.log('l').lag('g')).rejects.toMatchObject(unsupported);
    // What the broker can do still works: an exact subject, a read from the latest message.
    const consumer = await bus.topic('t').subscribe('a.b', () => undefined);
    await consumer.close();
    await bus.close();
  });
});
