/**
 * A wrong password full of URL-special characters, against the real brokers: connect() fails with
 * a typed error (or, on Mosquitto, which allows anonymous clients, connects), and no piece of the
 * password is in the error, its causes, a log line, a state or error event, or health().
 */
import { kafka } from '@omnibus/adapter-kafka';
import { mqtt } from '@omnibus/adapter-mqtt';
import { rabbitmq } from '@omnibus/adapter-rabbitmq';
import { stomp } from '@omnibus/adapter-stomp';
import {
  type AdapterFactory,
  type Bus,
  ConfigError,
  connect,
  isOmnibusError,
  type Logger,
} from '@omnibus/core';
import { type BrokerName, brokerAvailable } from '@omnibus/test-brokers';
import { describe, expect, it } from 'vitest';
import { errorTexts } from './security.js';

/** Distinctive words joined by every URL-special character: a leak of any piece shows as a word. */
const PIECES = ['Zk9sQ1', 'Qw4eR2', 'Rt7yU3', 'Yu8iO4', 'Io5pA6', 'Pa3sD7', 'Sd2fG8', 'Fg6hJ9', 'Hj1kL0'];
const SECRET = PIECES.reduce((s, piece, i) => (i === 0 ? piece : `${s}${'/?#@:% +&'[i - 1]}${piece}`), '');

interface Family {
  readonly broker: BrokerName;
  readonly adapter: AdapterFactory;
  /** `{}` is where the password goes. */
  readonly url: string;
  /** May connect anyway (anonymous access). */
  readonly mayConnect?: boolean;
}

const families: Family[] = [
  { broker: 'rabbitmq', adapter: rabbitmq(), url: 'amqp://guest:{}@127.0.0.1:5672' },
  { broker: 'rabbitmq-stomp', adapter: stomp(), url: 'stomp://guest:{}@127.0.0.1:61613' },
  {
    broker: 'mosquitto',
    adapter: mqtt(),
    url: 'mqtt://u:{}@127.0.0.1:1883?connectTimeoutMs=3000',
    mayConnect: true,
  },
  {
    broker: 'kafka',
    adapter: kafka(),
    url: 'kafka://u:{}@127.0.0.1:9092?connectionTimeoutMs=2000&retries=0',
  },
];

function text(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) => (v instanceof Error ? errorTexts(v) : v)) ?? '';
}

function recorder(): { logger: Logger; lines: string[] } {
  const lines: string[] = [];
  const log = (fields: Record<string, unknown>, message: string) => lines.push(message, text(fields));
  return { logger: { debug: log, info: log, warn: log, error: log }, lines };
}

function expectNoPiece(texts: readonly string[]): void {
  const all = texts.join('\n');
  for (const piece of PIECES) expect(all, `"${piece}" leaked`).not.toContain(piece);
}

for (const family of families) {
  const availability = await brokerAvailable(family.broker);
  if (!availability.ok) console.warn(`[secrets] skipping ${family.broker}: ${availability.reason}`);
  describe.skipIf(!availability.ok)(`a wrong special-character password on ${family.broker}`, () => {
    it('percent-encoded (reaches the broker): a typed error, or a connection, without the password', async () => {
      const url = family.url.replace('{}', encodeURIComponent(SECRET));
      const { logger, lines } = recorder();
      const texts: string[] = [];
      let bus: Bus | undefined;
      try {
        bus = await connect(url, { adapters: [family.adapter], logger, connectTimeoutMs: 10_000 });
      } catch (error) {
        expect(isOmnibusError(error), String(error)).toBe(true);
        texts.push(...errorTexts(error));
      }
      if (bus !== undefined) {
        expect(family.mayConnect, `${family.broker} accepted a wrong password`).toBe(true);
        bus.on('state', (state, error) => texts.push(state, ...errorTexts(error)));
        bus.on('error', (error) => texts.push(...errorTexts(error)));
        await bus.queue('secrets-probe').send('x');
        texts.push(text(bus.health()), String(bus));
        await bus.close();
      }
      texts.push(...lines);
      expectNoPiece(texts);
    });

    it('raw (unencoded): a ConfigError that shows none of it', async () => {
      const url = family.url.replace('{}', SECRET);
      const { logger, lines } = recorder();
      const error = await connect(url, { adapters: [family.adapter], logger, connectTimeoutMs: 10_000 }).then(
        (bus) => bus.close().then(() => expect.unreachable('connected with an unparseable URL')),
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(ConfigError);
      expectNoPiece([...errorTexts(error), ...lines]);
      expect((error as Error).message).toMatch(/percent-encode/i);
    });
  });
}
