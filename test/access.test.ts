/**
 * Access control against the real brokers (scripts/brokers.sh, docs/brokers.md "TLS and access
 * control"): a wrong password or a missing permission is a typed error that shows no piece of the
 * password, and no message moves.
 *
 * - Mosquitto on 1884 (anonymous access off): the right password works, a wrong one or none is refused.
 * - Kafka SASL_SSL with SCRAM: a wrong password is refused.
 * - RabbitMQ: omnibus-limited may use only `omnibus-limited.*` on vhost `/` and nothing on vhost
 *   `omnibus-private`; sending to or consuming from another queue is refused and leaves it as it was.
 */
import { randomUUID } from 'node:crypto';
import { kafka } from '@omnibus/adapter-kafka';
import { mqtt } from '@omnibus/adapter-mqtt';
import { rabbitmq } from '@omnibus/adapter-rabbitmq';
import { type AdapterFactory, type Bus, connect, isOmnibusError } from '@omnibus/core';
import {
  brokerAvailable,
  brokerUrls,
  SECURE_USERS,
  type SecureListener,
  secureAvailable,
  tlsFiles,
} from '@omnibus/test-brokers';
import amqp from 'amqplib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { errorTexts } from './security.js';

/** A wrong password: none of it may show up in an error. */
const WRONG = 'Wr0ng-Pa55-Kq8';

/** connect() must fail: resolves with its error, which must be an Omnibus error without WRONG in it. */
async function refused(url: string, adapter: AdapterFactory): Promise<Error> {
  const error = await connect(url, { adapters: [adapter], connectTimeoutMs: 15_000 }).then(
    async (bus) => {
      await bus.close();
      return expect.unreachable(`connected to ${url.replace(/:[^:@/]*@/, ':***@')}`);
    },
    (e: unknown) => e,
  );
  expect(isOmnibusError(error), String(error)).toBe(true);
  const texts = errorTexts(error).join('\n');
  expect(texts).not.toContain(WRONG);
  return error as Error;
}

/** Sends one message to a fresh queue and receives it. */
async function roundTrip(bus: Bus, name: string): Promise<void> {
  const body = `allowed ${randomUUID()}`;
  let arrive: (payload: string) => void = () => undefined;
  const arrived = new Promise<string>((resolve) => {
    arrive = resolve;
  });
  const queue = bus.queue<string>(name);
  const consumer = await queue.consume(async (msg) => arrive(msg.payload));
  try {
    await queue.send(body);
    expect(await arrived).toBe(body);
  } finally {
    await consumer.close();
  }
}

async function available(listener: SecureListener): Promise<boolean> {
  const availability = await secureAvailable(listener);
  if (!availability.ok) console.warn(`[access] skipping ${listener}: ${availability.reason}`);
  return availability.ok;
}

const mosquitto = SECURE_USERS.mosquitto;
describe.skipIf(!(await available('mosquitto-auth')))('Mosquitto with anonymous access off', () => {
  const url = (user: string, password: string) =>
    `mqtt://${encodeURIComponent(user)}:${encodeURIComponent(password)}@127.0.0.1:1884`;

  it('the right password: connects and a message goes there and back', async () => {
    const bus = await connect(url(mosquitto.username, mosquitto.password), { adapters: [mqtt()] });
    try {
      await roundTrip(bus, `omnibus-auth.${randomUUID().slice(0, 8)}`);
    } finally {
      await bus.close();
    }
  });

  it('a wrong password: a ConnectionError saying not authorized, without the password', async () => {
    const error = await refused(url(mosquitto.username, WRONG), mqtt());
    expect(error.name).toBe('ConnectionError');
    expect(errorTexts(error).join('\n')).toMatch(/not authori[sz]ed|bad user ?name or password/i);
  });

  it('no user name and password: refused with a ConnectionError', async () => {
    const error = await refused('mqtt://127.0.0.1:1884', mqtt());
    expect(error.name).toBe('ConnectionError');
    expect(errorTexts(error).join('\n')).toMatch(/not authori[sz]ed/i);
  });
});

const scram = SECURE_USERS.kafkaScram;
describe.skipIf(!(await available('kafka-sasl')))('Kafka SASL/SCRAM over SSL', () => {
  for (const mechanism of ['scram-sha-256', 'scram-sha-512']) {
    it(`${mechanism}, a wrong password: a typed error naming the authentication, without the password`, async () => {
      const error = await refused(
        `kafka://${scram.username}:${WRONG}@127.0.0.1:9292?saslMechanism=${mechanism}&caFile=${encodeURIComponent(tlsFiles().ca)}`,
        kafka(),
      );
      expect(error.name).toBe('ConnectionError');
      expect(errorTexts(error).join('\n')).toMatch(/authentication failed|SASL/i);
    });
  }
});

const limited = SECURE_USERS.rabbitmqLimited;
const rabbit = await brokerAvailable('rabbitmq');
if (!rabbit.ok) console.warn(`[access] skipping RabbitMQ: ${rabbit.reason}`);
describe.skipIf(!rabbit.ok)('RabbitMQ permissions', () => {
  const base = new URL(brokerUrls().amqp);
  const as = (user: string, password: string, vhost = '') =>
    `amqp://${encodeURIComponent(user)}:${encodeURIComponent(password)}@${base.host}/${encodeURIComponent(vhost)}`;
  /** A queue of guest's with one message in it, which omnibus-limited may not touch. */
  const foreign = `omnibus-foreign.${randomUUID().slice(0, 8)}`;
  let guest: Bus;
  let raw: amqp.ChannelModel;

  beforeAll(async () => {
    guest = await connect(as('guest', 'guest'), { adapters: [rabbitmq()] });
    await guest.queue<string>(foreign).send('from guest');
    raw = await amqp.connect(brokerUrls().amqp);
  });

  afterAll(async () => {
    const channel = await raw?.createChannel();
    await channel?.deleteQueue(foreign);
    await raw?.close();
    await guest?.close();
  });

  /** How many messages the foreign queue holds, as guest sees it. */
  async function foreignCount(): Promise<number> {
    const channel = await raw.createChannel();
    try {
      return (await channel.checkQueue(foreign)).messageCount;
    } finally {
      await channel.close();
    }
  }

  it('the same user where it may: a message goes there and back', async () => {
    const bus = await connect(as(limited.username, limited.password), { adapters: [rabbitmq()] });
    try {
      await roundTrip(bus, `${limited.prefix}${randomUUID().slice(0, 8)}`);
    } finally {
      await bus.close();
    }
  });

  it('a vhost without permission: connect() fails with a ConnectionError naming the vhost', async () => {
    const error = await refused(as(limited.username, limited.password, limited.privateVhost), rabbitmq());
    expect(error.name).toBe('ConnectionError');
    expect(error.message).toContain(`refused vhost "${limited.privateVhost}"`);
  });

  it('a wrong password: a ConnectionError without the password', async () => {
    const error = await refused(as(limited.username, WRONG), rabbitmq());
    expect(error.name).toBe('ConnectionError');
    expect(errorTexts(error).join('\n')).toMatch(/ACCESS_REFUSED|login was refused/i);
  });

  it("sending to another user's queue is refused with a typed error, and nothing arrives there", async () => {
    expect(await foreignCount()).toBe(1);
    const bus = await connect(as(limited.username, limited.password), { adapters: [rabbitmq()] });
    try {
      const error = await bus
        .queue<string>(foreign)
        .send('from omnibus-limited')
        .then(
          () => expect.unreachable('the send was accepted'),
          (e: unknown) => e,
        );
      expect(isOmnibusError(error), String(error)).toBe(true);
      expect(errorTexts(error).join('\n')).toMatch(/ACCESS_REFUSED|permission/i);
      expect(await foreignCount()).toBe(1);
      // The refusal closed a channel, not the connection: what the user may do still works.
      expect(bus.health().state).toBe('connected');
      await roundTrip(bus, `${limited.prefix}${randomUUID().slice(0, 8)}`);
    } finally {
      await bus.close();
    }
    expect(await foreignCount()).toBe(1);
  });

  it("consuming another user's queue is refused with a typed error, and its message stays", async () => {
    const bus = await connect(as(limited.username, limited.password), { adapters: [rabbitmq()] });
    const handled: unknown[] = [];
    try {
      const error = await bus
        .queue<string>(foreign)
        .consume(async (msg) => {
          handled.push(msg.payload);
        })
        .then(
          async (consumer) => {
            await consumer.close();
            return expect.unreachable('the consumer was accepted');
          },
          (e: unknown) => e,
        );
      expect(isOmnibusError(error), String(error)).toBe(true);
      expect(errorTexts(error).join('\n')).toMatch(/ACCESS_REFUSED|permission/i);
    } finally {
      await bus.close();
    }
    expect(handled).toEqual([]);
    expect(await foreignCount()).toBe(1);
  });
});
