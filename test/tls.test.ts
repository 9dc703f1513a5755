/**
 * TLS against the real brokers' TLS listeners (scripts/brokers.sh, docs/brokers.md "TLS and access
 * control"), through each adapter and the shared TLS options:
 *
 * - with the test CA (`caFile`), a message goes there and back (verification on: the default);
 * - with another CA, with no CA (the system's), or with a host name the certificate does not name
 *   (`servername`), connect() fails with a ConnectionError that names the reason and shows no
 *   piece of the password in the URL.
 *
 * Each listener is checked first: under OMNIBUS_REQUIRE_BROKERS=1 one that is down fails its suite.
 */
import { randomUUID } from 'node:crypto';
import { kafka } from '@omnibus/adapter-kafka';
import { mqtt } from '@omnibus/adapter-mqtt';
import { rabbitmq } from '@omnibus/adapter-rabbitmq';
import { stomp } from '@omnibus/adapter-stomp';
import { type AdapterFactory, type Bus, ConnectionError, type Consumer, connect } from '@omnibus/core';
import { SECURE_USERS, type SecureListener, secureAvailable, tlsFiles } from '@omnibus/test-brokers';
import { describe, expect, it } from 'vitest';
import { errorTexts } from './security.js';

const files = tlsFiles();
const limited = SECURE_USERS.rabbitmqLimited;
const scram = SECURE_USERS.kafkaScram;
/** The TLS handshake fails before any credentials are sent: this must not show up anywhere. */
const SECRET = 'Tq7-never-shown-Zx4';

interface Family {
  readonly listener: SecureListener;
  readonly adapter: AdapterFactory;
  /** `{user}` and `{password}` are filled in; TLS options are appended to the query. */
  readonly url: string;
  readonly user: string;
  readonly password: string;
  /** Kafka checks logs (a queue needs a consumer group, slower to join); the others queues. */
  readonly kind: 'queue' | 'log';
  /** A name the user may use. */
  readonly prefix: string;
}

const families: Family[] = [
  {
    listener: 'rabbitmq-amqps',
    adapter: rabbitmq(),
    url: 'amqps://{user}:{password}@127.0.0.1:5671',
    user: limited.username,
    password: limited.password,
    kind: 'queue',
    prefix: limited.prefix,
  },
  {
    listener: 'rabbitmq-stomps',
    adapter: stomp(),
    url: 'stomp+ssl://{user}:{password}@127.0.0.1:61615',
    user: 'guest',
    password: 'guest',
    kind: 'queue',
    prefix: 'omnibus-tls.',
  },
  {
    listener: 'mosquitto-tls',
    adapter: mqtt(),
    url: 'mqtts://{user}:{password}@127.0.0.1:8883',
    user: 'tls-test',
    password: 'anonymous-allowed',
    kind: 'queue',
    prefix: 'omnibus-tls.',
  },
  {
    listener: 'activemq-stomps',
    adapter: stomp(),
    url: 'stomp+ssl://{user}:{password}@127.0.0.1:61612',
    user: 'admin',
    password: 'admin',
    kind: 'queue',
    prefix: 'omnibus-tls.',
  },
  {
    listener: 'kafka-ssl',
    adapter: kafka(),
    url: 'kafka://127.0.0.1:9192?tls=true',
    user: '',
    password: '',
    kind: 'log',
    prefix: 'omnibus-tls.',
  },
  {
    listener: 'kafka-sasl',
    adapter: kafka(),
    url: 'kafka://{user}:{password}@127.0.0.1:9292?saslMechanism=scram-sha-256&tls=true',
    user: scram.username,
    password: scram.password,
    kind: 'log',
    prefix: 'omnibus-tls.',
  },
];

function urlOf(family: Family, tls: Record<string, string>, password = family.password): string {
  let url = family.url
    .replace('{user}', encodeURIComponent(family.user))
    .replace('{password}', encodeURIComponent(password));
  // kafka-ssl has no credentials in its URL: give it some for the refusals, to look for.
  if (password === SECRET && !family.url.includes('{password}')) {
    url = url.replace('kafka://', `kafka://u:${SECRET}@`);
  }
  const query = new URLSearchParams(tls).toString();
  return query === '' ? url : `${url}${url.includes('?') ? '&' : '?'}${query}`;
}

/** Sends one message and receives it back. */
async function roundTrip(bus: Bus, family: Family): Promise<void> {
  const name = `${family.prefix}${randomUUID().slice(0, 8)}`;
  const body = `over TLS ${randomUUID()}`;
  let arrive: (payload: string) => void = () => undefined;
  const arrived = new Promise<string>((resolve) => {
    arrive = resolve;
  });
  let consumer: Consumer | undefined;
  try {
    if (family.kind === 'log') {
      const log = bus.log<string>(name);
      await log.append(body);
      consumer = await log.read(async (msg) => arrive(msg.payload), { from: 'earliest' });
    } else {
      const queue = bus.queue<string>(name);
      consumer = await queue.consume(async (msg) => arrive(msg.payload));
      await queue.send(body);
    }
    expect(await arrived).toBe(body);
  } finally {
    await consumer?.close();
  }
}

for (const family of families) {
  const availability = await secureAvailable(family.listener);
  if (!availability.ok) console.warn(`[tls] skipping ${family.listener}: ${availability.reason}`);

  describe.skipIf(!availability.ok)(`TLS on ${family.listener}`, () => {
    it('with the test CA: connects and a message goes there and back', async () => {
      const bus = await connect(urlOf(family, { caFile: files.ca }), {
        adapters: [family.adapter],
        connectTimeoutMs: 15_000,
      });
      try {
        expect(bus.health().state).toBe('connected');
        await roundTrip(bus, family);
      } finally {
        await bus.close();
      }
    });

    const refusals: [string, Record<string, string>, RegExp][] = [
      ['a CA that did not sign its certificate', { caFile: files.otherCa }, /certificate|self.signed/i],
      ['no CA (the system trust store)', {}, /certificate|self.signed/i],
      [
        'a host name its certificate does not name',
        { caFile: files.ca, servername: 'not-the-broker.example' },
        /altnames|host ?name/i,
      ],
    ];
    for (const [what, tls, reason] of refusals) {
      it(`refuses ${what}: a ConnectionError that names the reason, not the password`, async () => {
        const error = await connect(urlOf(family, tls, SECRET), {
          adapters: [family.adapter],
          connectTimeoutMs: 15_000,
        }).then(
          async (bus) => {
            await bus.close();
            return expect.unreachable(`${family.listener} accepted ${what}`);
          },
          (e: unknown) => e,
        );
        expect(error).toBeInstanceOf(ConnectionError);
        // Trying again cannot help: no retry, and callers are told so.
        expect((error as ConnectionError).retriable).toBe(false);
        const texts = errorTexts(error).join('\n');
        expect(texts).toMatch(reason);
        expect(texts).not.toContain(SECRET);
        expect(texts).not.toContain(encodeURIComponent(SECRET));
      });
    }
  });
}
