// The broker helper itself (packages/test-brokers/src/brokers.ts): env parsing, redaction, and the
// skip-or-fail decision, against a port where nothing listens.
import { createServer } from 'node:net';
import {
  brokerAvailable,
  brokerUrls,
  DEFAULT_BROKER_URLS,
  probeBroker,
  redactUrl,
  secureAvailable,
  tlsFiles,
} from '@omnibus/test-brokers';
import { afterEach, describe, expect, it, vi } from 'vitest';

/** A loopback port that was free a moment ago. */
async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (typeof address !== 'object' || address === null) throw new Error('no port');
  return address.port;
}

afterEach(() => {
  vi.unstubAllEnvs();
});

describe('brokerUrls', () => {
  it('defaults to the ports of scripts/brokers.sh', () => {
    expect(brokerUrls({})).toEqual(DEFAULT_BROKER_URLS);
  });

  it('reads the env vars, and a comma-separated KAFKA_BROKERS', () => {
    const urls = brokerUrls({
      AMQP_URL: 'amqp://u:p@rabbit:5673',
      MQTT_URL: 'mqtt://mq:1884',
      STOMP_URL: 'stomp://u:p@rabbit:61615',
      ACTIVEMQ_STOMP_URL: 'stomp://a:b@amq:61616',
      KAFKA_BROKERS: ' 127.0.0.1:9092, 127.0.0.1:9093 ,',
    });
    expect(urls).toEqual({
      amqp: 'amqp://u:p@rabbit:5673',
      mqtt: 'mqtt://mq:1884',
      stomp: 'stomp://u:p@rabbit:61615',
      activemqStomp: 'stomp://a:b@amq:61616',
      kafkaBrokers: ['127.0.0.1:9092', '127.0.0.1:9093'],
    });
  });
});

describe('redactUrl', () => {
  it('hides user and password', () => {
    expect(redactUrl('amqp://guest:secret@127.0.0.1:5672/vh')).toBe('amqp://***@127.0.0.1:5672/vh');
    expect(redactUrl('mqtt://127.0.0.1:1883')).toBe('mqtt://127.0.0.1:1883');
  });
});

describe('probeBroker and brokerAvailable', () => {
  it('gives a reason, with the URL redacted, when nothing listens', async () => {
    const port = await freePort();
    const urls = { ...DEFAULT_BROKER_URLS, amqp: `amqp://guest:secret@127.0.0.1:${port}` };
    const reason = await probeBroker('rabbitmq', { urls });
    expect(reason).toContain(`rabbitmq is not reachable at amqp://***@127.0.0.1:${port}`);
    expect(reason).toContain('ECONNREFUSED');
    expect(reason).not.toContain('secret');
  });

  it('is ok when the port accepts connections; for Kafka one bootstrap address is enough', async () => {
    const server = createServer((socket) => socket.destroy());
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      const dead = await freePort();
      const urls = { ...DEFAULT_BROKER_URLS, kafkaBrokers: [`127.0.0.1:${dead}`, `127.0.0.1:${port}`] };
      expect(await probeBroker('kafka', { urls })).toBeUndefined();
      expect(await brokerAvailable('kafka', { urls })).toEqual({ ok: true });
    } finally {
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });

  it('skips (ok: false) by default and throws under OMNIBUS_REQUIRE_BROKERS=1', async () => {
    const port = await freePort();
    const urls = { ...DEFAULT_BROKER_URLS, activemqStomp: `stomp://admin:admin@127.0.0.1:${port}` };
    vi.stubEnv('OMNIBUS_REQUIRE_BROKERS', '');
    const skipped = await brokerAvailable('activemq', { urls });
    expect(skipped.ok).toBe(false);
    vi.stubEnv('OMNIBUS_REQUIRE_BROKERS', '1');
    await expect(brokerAvailable('activemq', { urls })).rejects.toThrow(
      new RegExp(
        `OMNIBUS_REQUIRE_BROKERS=1 and activemq is not reachable at stomp://\\*\\*\\*@127\\.0\\.0\\.1:${port}`,
      ),
    );
  });
});

describe('tlsFiles and secureAvailable', () => {
  it("finds the test CA under OMNIBUS_TLS_DIR, else BROKERS_DIR/tls, else the machine's /var/tmp/omnibus-brokers/tls", () => {
    expect(tlsFiles({ OMNIBUS_TLS_DIR: '/x/tls', BROKERS_DIR: '/y' }).ca).toBe('/x/tls/ca.pem');
    expect(tlsFiles({ BROKERS_DIR: '/y' })).toEqual({
      dir: '/y/tls',
      ca: '/y/tls/ca.pem',
      otherCa: '/y/tls/other-ca.pem',
    });
    expect(tlsFiles({}).ca).toBe('/var/tmp/omnibus-brokers/tls/ca.pem');
  });

  it('skips without the test CA, and throws under OMNIBUS_REQUIRE_BROKERS=1', async () => {
    const env = { OMNIBUS_TLS_DIR: '/nonexistent/omnibus-tls' };
    const skipped = await secureAvailable('kafka-ssl', { env });
    expect(skipped).toEqual({ ok: false, reason: expect.stringContaining('no test CA at /nonexistent') });
    await expect(
      secureAvailable('kafka-ssl', { env: { ...env, OMNIBUS_REQUIRE_BROKERS: '1' } }),
    ).rejects.toThrow(/OMNIBUS_REQUIRE_BROKERS=1 and kafka-ssl is not available \(no test CA/);
  });
});
