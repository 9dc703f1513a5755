import { thrownBy } from '@omnibus/contract';
import { ConfigError, parseUrl } from '@omnibus/core';
import { describe, expect, it } from 'vitest';
import { resolveOptions } from '../src/options.js';

const resolve = (url: string, extra: Record<string, unknown> = {}) => {
  const parsed = parseUrl(url);
  return resolveOptions(parsed, {}, { ...parsed.params, ...extra });
};

describe('options', () => {
  it('defaults to MQTT 5, QoS 1 and the queue prefix', () => {
    const o = resolve('mqtt://localhost');
    expect(o).toMatchObject({ protocolVersion: 5, qos: 1, queuePrefix: 'omnibus/queue', clientIdPrefix: '' });
    expect(o.base).toMatchObject({ host: 'localhost', port: 1883, protocolVersion: 5, queueQoSZero: false });
  });

  it('reads options from the URL query and credentials from the user info', () => {
    const o = resolve(
      'mqtt://user:s3cret@broker:1884?protocolVersion=4&qos=2&keepaliveSec=10&clientIdPrefix=app-',
    );
    expect(o).toMatchObject({ protocolVersion: 4, qos: 2, keepaliveSec: 10, clientIdPrefix: 'app-' });
    expect(o.base).toMatchObject({ username: 'user', password: 's3cret', port: 1884, keepalive: 10 });
  });

  it('lists every invalid option at once, without the password', () => {
    const caught = thrownBy(() =>
      resolve('mqtt://user:s3cret@broker?protocolVersion=3&qos=5&queuePrefix=a/%2B/b&bogus=1'),
    );
    expect(caught).toBeInstanceOf(ConfigError);
    const error = caught as ConfigError;
    expect(error.issues.length).toBeGreaterThanOrEqual(4);
    expect(error.message).toMatch(/protocolVersion/);
    expect(error.message).toMatch(/qos/);
    expect(error.message).toMatch(/queuePrefix/);
    expect(error.message).not.toMatch(/s3cret/);
  });

  it('refuses the envelope on MQTT 5 and TLS options without a TLS scheme', () => {
    expect(() => resolve('mqtt://localhost?envelope=true')).toThrow(/only for protocolVersion 4/);
    expect(() => resolve('mqtt://localhost?caFile=/nope')).toThrow(/mqtts/);
    expect(() => resolve('ws://localhost?rejectUnauthorized=false')).toThrow(/mqtts/);
    expect(() => resolve('mqtts://localhost?caFile=/does/not/exist')).toThrow(/caFile: cannot read/);
  });

  it("takes core's TLS options on mqtts:// and wss://, verification on unless turned off", () => {
    expect(resolve('mqtts://localhost').base).toMatchObject({ port: 8883, rejectUnauthorized: true });
    const o = resolve('mqtts://localhost?rejectUnauthorized=false&servername=broker', {
      ca: 'CA',
      passphrase: 'p',
    });
    expect(o.base).toMatchObject({
      rejectUnauthorized: false,
      servername: 'broker',
      ca: 'CA',
      passphrase: 'p',
    });
    // mqtt.js does not hand `servername` to the WebSocket client: it goes into wsOptions.
    expect(resolve('wss://localhost?servername=broker').base).toMatchObject({
      port: 443,
      wsOptions: { servername: 'broker' },
    });
  });

  it('maps ws:// to a path and several hosts to mqtt.js servers', () => {
    expect(resolve('ws://localhost:9001/mqtt').base).toMatchObject({
      protocol: 'ws',
      path: '/mqtt',
      port: 9001,
    });
    expect(resolve('mqtt://a:1883,b:1884').base.servers).toEqual([
      { host: 'a', port: 1883, protocol: 'mqtt' },
      { host: 'b', port: 1884, protocol: 'mqtt' },
    ]);
  });
});
