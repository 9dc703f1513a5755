import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { thrownBy } from '@omnibus/contract';
import { ConfigError, parseUrl, TLS_OPTION_NAMES } from '@omnibus/core';
import { describe, expect, it } from 'vitest';
import { OPTION_NAMES, resolveSettings } from '../src/options.js';

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
    const caught = thrownBy(() =>
      settings('amqp://u:topsecret@h?heartbeat=-1&queueType=stream&commitIntervalMs=0', {
        caFile: '/nope',
        rejectUnauthorized: 'maybe',
        unknownThing: 1,
      }),
    );
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
    const caught = thrownBy(() =>
      settings('amqp://h', { caFile: '/etc/ca.pem', authMechanism: 'EXTERNAL', overflow: 'drop-head' }),
    );
    const issues = (caught as ConfigError).issues;
    expect(issues.some((i) => i.startsWith('caFile: TLS options need an amqps:// URL'))).toBe(true);
    expect(issues.some((i) => i.startsWith('authMechanism'))).toBe(true);
    expect(issues.some((i) => i.startsWith('overflow'))).toBe(true);
    expect(() => settings('amqp://h?rejectUnauthorized=false')).toThrow(/rejectUnauthorized: TLS options/);
    expect(() => settings('amqps://h', { caFile: '/no/such/ca.pem' })).toThrow(/caFile: cannot read/);
    expect(() => settings('amqps://h?caFile=/etc/ca.pem', { ca: 'CA PEM' })).toThrow(/give one of them/);
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

  it('takes the TLS options of core and passes the material and checks to the socket for amqps', () => {
    expect(OPTION_NAMES).toEqual(expect.arrayContaining([...TLS_OPTION_NAMES]));
    const dir = mkdtempSync(join(tmpdir(), 'omnibus-tls-'));
    writeFileSync(join(dir, 'ca.pem'), 'CA PEM');
    const s = settings(
      `amqps://h?caFile=${encodeURIComponent(join(dir, 'ca.pem'))}&servername=rabbit.internal`,
      {
        cert: 'CERT PEM',
        key: 'KEY PEM',
        passphrase: 'hunter2',
      },
    );
    expect(String(s.socket.ca)).toBe('CA PEM');
    expect(s.socket).toMatchObject({
      cert: 'CERT PEM',
      key: 'KEY PEM',
      passphrase: 'hunter2',
      servername: 'rabbit.internal',
      rejectUnauthorized: true,
    });
    expect(s.connectFields(0)).toMatchObject({ protocol: 'amqps', port: 5671 });
    expect(settings('amqps://h?rejectUnauthorized=false').socket.rejectUnauthorized).toBe(false);
    expect(settings('amqps://h?authMechanism=EXTERNAL').socket.credentials?.mechanism).toBe('EXTERNAL');
  });
});
