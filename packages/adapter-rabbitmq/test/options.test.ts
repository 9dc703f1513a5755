import { ConfigError, connect, parseUrl } from '@omnibus/core';
import { describe, expect, it } from 'vitest';
import { rabbitmq } from '../src/index.js';
import { resolveSettings } from '../src/options.js';
import { AMQP_URL, unavailable } from './broker.js';

const settings = (url: string, options: Record<string, unknown> = {}) =>
  resolveSettings(parseUrl(url), { ...parseUrl(url).params, ...options });

describe('rabbitmq options', () => {
  it('reads hosts, ports, the vhost and credentials from the URL', () => {
    const s = settings('amqp://user:s3cret@a:5673,b/prod%2Feu?heartbeat=10');
    expect(s.hosts).toEqual([
      { host: 'a', port: 5673 },
      { host: 'b', port: 5672 },
    ]);
    const first = s.connectFields(0);
    expect(first).toMatchObject({
      hostname: 'a',
      port: 5673,
      heartbeat: 10,
      username: 'user',
      password: 's3cret',
    });
    // amqplib unescapes the vhost once more: it is passed escaped.
    expect(decodeURIComponent(first.vhost ?? '')).toBe('prod/eu');
    expect(s.connectFields(1)).toMatchObject({ hostname: 'b', port: 5672 });
    expect(s.connectFields(2)).toMatchObject({ hostname: 'a' });
    expect(settings('amqp://h').connectFields(0).vhost).toBe(encodeURIComponent('/'));
    expect(settings('amqps://h').hosts[0]!.port).toBe(5671);
    expect(s.redacted).not.toContain('s3cret');
  });

  it('reports every invalid option at once, without echoing secrets', () => {
    let caught: unknown;
    try {
      settings('amqp://u:topsecret@h?heartbeat=-1&queueType=stream&commitIntervalMs=0', {
        caFile: '/nope',
        rejectUnauthorized: 'maybe',
        unknownThing: 1,
      });
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(ConfigError);
    const issues = (caught as ConfigError).issues.join('\n');
    for (const field of [
      'heartbeat',
      'queueType',
      'commitIntervalMs',
      'rejectUnauthorized',
      'unknownThing',
    ]) {
      expect(issues).toContain(field);
    }
    expect((caught as Error).message).not.toContain('topsecret');
    expect((caught as Error).message).toMatch(/^\[omnibus\] \[rabbitmq\]/);
  });

  it('rejects TLS options without amqps and inconsistent queue settings', () => {
    let caught: unknown;
    try {
      settings('amqp://h', { caFile: '/etc/ca.pem', authMechanism: 'EXTERNAL', overflow: 'drop-head' });
    } catch (error) {
      caught = error;
    }
    const issues = (caught as ConfigError).issues;
    expect(issues.some((i) => i.startsWith('caFile: TLS options need an amqps:// URL'))).toBe(true);
    expect(issues.some((i) => i.startsWith('authMechanism'))).toBe(true);
    expect(issues.some((i) => i.startsWith('overflow'))).toBe(true);
    expect(() => settings('amqps://h', { caFile: '/no/such/ca.pem' })).toThrow(/caFile: cannot read/);
  });

  it('turns queue and stream options into declaration arguments', () => {
    const s = settings('amqp://h?queueType=quorum&maxLength=100&messageTtlMs=60000&streamMaxAge=7D', {
      streamMaxLengthBytes: 1_000_000,
    });
    expect(s.queueArguments).toEqual({
      'x-queue-type': 'quorum',
      'x-max-length': 100,
      'x-message-ttl': 60_000,
      'x-overflow': 'reject-publish',
    });
    expect(s.streamArguments).toEqual({
      'x-queue-type': 'stream',
      'x-max-age': '7D',
      'x-max-length-bytes': 1_000_000,
    });
    expect(settings('amqp://h?lazyQueues=true').queueArguments).toEqual({ 'x-queue-mode': 'lazy' });
    expect(() => settings('amqp://h?streamMaxAge=7days')).toThrow(/streamMaxAge/);
  });
});

const reason = await unavailable();

describe.skipIf(reason !== undefined)('rabbitmq connection settings (live broker)', () => {
  const url = parseUrl(AMQP_URL);
  const auth = url.username === undefined ? '' : `${url.username}:${url.password ?? ''}@`;
  const host = url.hosts[0]!;

  it('moves on to the next host of a cluster URL when one does not answer', async () => {
    // Port 1 refuses connections: the adapter must try the next host instead of giving up.
    const bus = await connect(`amqp://${auth}127.0.0.1:1,${host.host}:${host.port ?? 5672}`, {
      adapters: [rabbitmq({ reconnectDelayMs: 10 })],
    });
    expect(bus.health().state).toBe('connected');
    await bus.close();
  });

  it('fails at connect with a ConnectionError for an unknown vhost, without the password', async () => {
    const started = Date.now();
    const error = await connect(`amqp://${auth}${host.host}:${host.port ?? 5672}/no-such-vhost-omnibus`, {
      adapters: [rabbitmq({ connectRetries: 1, reconnectDelayMs: 10 })],
    }).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'OMNIBUS_CONNECTION' });
    expect(String((error as Error).message)).toContain('no-such-vhost-omnibus');
    if (url.password !== undefined) expect((error as Error).message).not.toContain(`:${url.password}@`);
    expect(Date.now() - started).toBeLessThan(10_000);
  });

  it('fails at connect with a ConnectionError when no host answers', async () => {
    const error = await connect('amqp://127.0.0.1:1', {
      adapters: [rabbitmq({ connectRetries: 1, reconnectDelayMs: 10 })],
    }).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'OMNIBUS_CONNECTION' });
    expect((error as Error).message).toMatch(/ECONNREFUSED/);
  });
});
