import { thrownBy } from '@omnibus/contract';
import { ConfigError, parseUrl } from '@omnibus/core';
import { describe, expect, it } from 'vitest';
import { resolveOptions } from '../src/options.js';
import { partitionForKey } from '../src/producer.js';

const url = (text: string) => parseUrl(text);
const resolve = (text: string, raw: Record<string, unknown> = {}) =>
  resolveOptions(url(text), { ...url(text).params, ...raw }, 'bus-1');

describe('kafka options', () => {
  it('reads hosts with the default port, and numbers from the URL query', () => {
    const o = resolve(
      'kafka://a:9093,b?partitions=3&lingerMs=2&heartbeatIntervalMs=500&sessionTimeoutMs=6000',
    );
    expect(o.brokers).toEqual(['a:9093', 'b:9092']);
    expect(o).toMatchObject({ partitions: 3, lingerMs: 2, heartbeatIntervalMs: 500, sessionTimeoutMs: 6000 });
    expect(o.clientId).toBe('bus-1');
  });

  it('has defaults for everything', () => {
    const o = resolve('kafka://localhost');
    expect(o).toMatchObject({
      compression: 'none',
      partitions: 1,
      sasl: undefined,
      ssl: false,
      batchMaxMessages: 500,
      maxMessageBytes: 1_000_000,
      groupPrefix: 'omnibus',
    });
    // Unset: chosen at connect from the cluster's size.
    expect(o.replicationFactor).toBeUndefined();
  });

  it('reports every invalid option at once', () => {
    const error = thrownBy(() =>
      resolve('kafka://localhost?partitions=0&lingerMs=-1&compression=lz4&nope=1&sessionTimeoutMs=abc'),
    );
    expect(error).toBeInstanceOf(ConfigError);
    const issues = (error as ConfigError).issues.join('\n');
    for (const field of ['partitions', 'lingerMs', 'compression', 'sessionTimeoutMs'])
      expect(issues).toContain(field);
    expect(issues).toMatch(/nope/);
    expect((error as Error).message).toMatch(/^\[omnibus\] \[kafka\]/);
  });

  it('rejects a heartbeat interval that is not below the session timeout', () => {
    expect(() => resolve('kafka://localhost?heartbeatIntervalMs=10000&sessionTimeoutMs=10000')).toThrow(
      /heartbeatIntervalMs: must be lower than sessionTimeoutMs/,
    );
  });

  it('turns URL credentials into SASL, with the chosen mechanism, and never prints the password', () => {
    const o = resolve('kafka://alice:s3cr%40t@broker:9094?saslMechanism=scram-sha-512&tls=true');
    expect(o.sasl).toEqual({ mechanism: 'scram-sha-512', username: 'alice', password: 's3cr@t' });
    expect(o.ssl).toEqual({ rejectUnauthorized: true });
    try {
      resolve('kafka://alice:s3cr%40t@broker:9094?saslMechanism=md5');
    } catch (error) {
      expect((error as Error).message).not.toContain('s3cr');
      expect((error as Error).message).toContain('saslMechanism');
    }
  });

  it("takes SASL, core's TLS options and compression from the object config", () => {
    const o = resolve('kafka://broker', {
      sasl: { mechanism: 'plain', username: 'u', password: 'p' },
      ca: 'PEM',
      rejectUnauthorized: false,
      compression: 'gzip',
      clientId: 'billing',
    });
    expect(o.sasl).toEqual({ mechanism: 'plain', username: 'u', password: 'p' });
    expect(o.ssl).toEqual({ ca: 'PEM', rejectUnauthorized: false });
    expect(o.compression).toBe('gzip');
    expect(o.clientId).toBe('billing');
    expect(() => resolve('kafka://broker', { ca: 5 })).toThrow(ConfigError);
    // The nested `ssl` object of earlier versions is refused, not ignored.
    expect(() => resolve('kafka://broker', { ssl: true })).toThrow(/ssl/);
  });

  it('turns TLS on for any TLS option in the URL, and names a certificate file it cannot read', () => {
    expect(resolve('kafka://broker?servername=kafka.example').ssl).toEqual({
      servername: 'kafka.example',
      rejectUnauthorized: true,
    });
    expect(() => resolve('kafka://broker?caFile=/nonexistent/ca.pem')).toThrow(/caFile: cannot read/);
  });
});

describe('key partitioning', () => {
  it('is stable and spreads keys over the partitions like the Java client (murmur2)', () => {
    const counts = [0, 0, 0];
    for (let i = 0; i < 3000; i++) {
      const p = partitionForKey(`customer-${i}`, 3);
      expect(partitionForKey(`customer-${i}`, 3)).toBe(p);
      counts[p]!++;
    }
    for (const c of counts) expect(c).toBeGreaterThan(800);
    // murmur2 values from Kafka's UtilsTest.testMurmur2, as Utils.toPositive(hash) % partitions.
    const java: [string, number][] = [
      ['21', -973932308],
      ['foobar', -790332482],
      ['a-little-bit-long-string', -985981536],
      ['a-little-bit-longer-string', -1486304829],
      ['lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8', -58897971],
      ['abc', 479470107],
    ];
    for (const [key, hash] of java) {
      for (const n of [3, 7]) expect(partitionForKey(key, n)).toBe((hash & 0x7fffffff) % n);
    }
  });
});
