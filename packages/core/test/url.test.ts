import { describe, expect, it } from 'vitest';
import { ConfigError, parseUrl, redactUrl } from '../src/index.js';

describe('parseUrl', () => {
  it('reads scheme, credentials, hosts, path and query', () => {
    const url = parseUrl('amqps://user:p%40ss@rabbit-1:5671,rabbit-2/vhost%2Fa?heartbeat=10&frameMax=0');
    expect(url.scheme).toBe('amqps');
    expect(url.username).toBe('user');
    expect(url.password).toBe('p@ss');
    expect(url.hosts).toEqual([
      { host: 'rabbit-1', port: 5671 },
      { host: 'rabbit-2', port: undefined },
    ]);
    expect(url.path).toBe('vhost/a');
    expect(url.params).toEqual({ heartbeat: '10', frameMax: '0' });
  });

  it('keeps several Kafka brokers and IPv6 hosts', () => {
    expect(parseUrl('kafka://k1:9092,k2:9093,[::1]:9094').hosts).toEqual([
      { host: 'k1', port: 9092 },
      { host: 'k2', port: 9093 },
      { host: '::1', port: 9094 },
    ]);
  });

  it('never shows the password in redacted, toString or a template string', () => {
    const url = parseUrl('stomp+ssl://admin:s3cr3t@mq:61614?passcode=other');
    expect(url.redacted).toBe('stomp+ssl://admin:***@mq:61614?passcode=***');
    expect(`${url}`).not.toContain('s3cr3t');
    expect(String(url)).not.toContain('other');
    expect(JSON.stringify({ ...url, password: undefined })).not.toContain('s3cr3t');
  });

  it('rejects what is not a broker URL, naming the problem', () => {
    expect(() => parseUrl('localhost:5672')).toThrow(ConfigError);
    expect(() => parseUrl('amqp://host:99999')).toThrow(/invalid port "99999"/);
    expect(() => parseUrl('amqp://host:abc')).toThrow(/invalid port "abc"/);
    expect(() => parseUrl('kafka://k1:9092,,k2')).toThrow(/empty host/);
    expect(() => parseUrl('amqp://:5672')).toThrow(/port without a host/);
    expect(() => parseUrl('amqp://user:pw@ho st')).toThrow(/invalid host/);
  });

  it('reports every bad host at once', () => {
    try {
      parseUrl('kafka://a:0,b:70000');
      expect.unreachable();
    } catch (error) {
      expect((error as ConfigError).issues).toHaveLength(2);
    }
  });

  it('redacts passwords inside any text', () => {
    expect(redactUrl('failed: amqp://guest:guest@127.0.0.1:5672/ and more')).toBe(
      'failed: amqp://guest:***@127.0.0.1:5672/ and more',
    );
    // Inside a message a password's end cannot be told from the next URL's: hide up to the last "@".
    expect(redactUrl('failed: amqp://guest:guest@127.0.0.1:5672/ and mqtt://u:pw@h')).toBe(
      'failed: amqp://guest:***@h',
    );
    expect(redactUrl('x?token=abc&user=me')).toBe('x?token=***&user=me');
  });
});
