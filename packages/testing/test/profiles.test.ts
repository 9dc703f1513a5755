import { ACTIVEMQ_CAPABILITIES } from '@omnibus/adapter-stomp';
import {
  ConfigError,
  connect,
  memoryProfiles,
  UnsupportedCapabilityError,
  ValidationError,
} from '@omnibus/core';
import { createTestBus, spy } from '@omnibus/testing';
import { describe, expect, it } from 'vitest';

describe('memory://?profile=', () => {
  it('knows the profiles @omnibus/testing registers', () => {
    expect(memoryProfiles()).toEqual(
      expect.arrayContaining(['kafka', 'rabbitmq', 'mqtt5', 'mqtt311', 'stomp-rabbitmq', 'stomp-activemq']),
    );
  });

  it('refuses an unknown profile, saying how to get one', async () => {
    const error = await connect('memory://p?profile=nats').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).message).toMatch(
      /unknown profile "nats".*@omnibus\/testing.*registerProfile/,
    );
  });

  it('reports the adapter declaration, not memory’s', async () => {
    await using bus = await connect('memory://profiles?profile=stomp-activemq');
    expect(bus.adapter).toBe('memory');
    expect(bus.capabilities).toBe(ACTIVEMQ_CAPABILITIES);
  });

  it('kafka: a priority is refused where the application sends it', async () => {
    await using bus = await createTestBus({ profile: 'kafka' });
    expect(() => bus.queue('jobs', { maxPriority: 5 })).toThrow(UnsupportedCapabilityError);
    await expect(bus.queue('jobs').send('x', { priority: 1 })).rejects.toBeInstanceOf(
      UnsupportedCapabilityError,
    );
    await expect(bus.queue('jobs').send('x', { delayMs: 10 })).rejects.toThrow(/delay is not supported/);
  });

  it('stomp-activemq: priorities stop at 9, and within them the queue orders by priority', async () => {
    await using bus = await createTestBus({ profile: 'stomp-activemq' });
    expect(() => bus.queue('jobs', { maxPriority: 10 })).toThrow(ValidationError);
    const jobs = bus.queue<string>('jobs', { maxPriority: 9 });
    await expect(jobs.send('x', { priority: 10 })).rejects.toBeInstanceOf(ValidationError);
    await jobs.send('low', { priority: 1 });
    await jobs.send('high', { priority: 9 });
    const got: string[] = [];
    using watch = spy(bus);
    await jobs.consume((m) => {
      got.push(m.payload);
    });
    await watch.waitFor({ outcome: 'acked', where: () => got.length === 2 });
    expect(got).toEqual(['high', 'low']);
  });

  it('mqtt: no logs; mqtt311: no headers either', async () => {
    await using five = await createTestBus({ profile: 'mqtt5' });
    expect(() => five.log('audit')).toThrow(UnsupportedCapabilityError);
    await five.queue('q').send('ok', { headers: { tenant: 'a' } });
    await using four = await createTestBus({ profile: 'mqtt311' });
    await expect(four.queue('q').send('x', { headers: { tenant: 'a' } })).rejects.toThrow(
      /headers is not supported/,
    );
  });
});
