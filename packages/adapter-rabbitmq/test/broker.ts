/**
 * The RabbitMQ the tests run against (`AMQP_URL`, default amqp://guest:guest@127.0.0.1:5672), whether
 * it answers (skip with the reason, or fail under OMNIBUS_REQUIRE_BROKERS=1), buses on it, and its
 * restart.
 */
import { type Bus, connect } from '@omnibus/core';
import { brokerAvailable, brokerUrls, restarter } from '@omnibus/test-brokers';
import { afterEach } from 'vitest';
import { rabbitmq } from '../src/index.js';

export const AMQP_URL = brokerUrls().amqp;

/** Resolves with why RabbitMQ cannot be used, or undefined when it answers. */
export async function unavailable(): Promise<string | undefined> {
  const availability = await brokerAvailable('rabbitmq');
  if (availability.ok) return undefined;
  console.warn(`[adapter-rabbitmq] skipping the broker tests: ${availability.reason}`);
  return availability.reason;
}

/**
 * Restarts the whole broker node (`scripts/brokers.sh restart rabbitmq`): sockets close, the node
 * boots again. Undefined without a brokers script (OMNIBUS_BROKERS_SH naming none skips the tests).
 */
export const restartBroker = restarter('rabbitmq');

/** Opens buses on the test broker (`query` appended to its URL); each test's buses close after it. */
export function openBuses(): (query?: string) => Promise<Bus> {
  const buses: Bus[] = [];
  afterEach(async () => {
    await Promise.allSettled(buses.splice(0).map((bus) => bus.close()));
  });
  return async (query = '') => {
    const bus = await connect(`${AMQP_URL}${query}`, { adapters: [rabbitmq()] });
    buses.push(bus);
    return bus;
  };
}
