/**
 * Test helpers: where the Kafka broker is (KAFKA_BROKERS), whether it answers (skip, or fail under
 * OMNIBUS_REQUIRE_BROKERS=1), how to restart it, and a few probes behind the adapter's back.
 */
import { randomBytes } from 'node:crypto';
import { type Bus, type BusImpl, type ConnectOptions, connect } from '@omnibus/core';
import { brokerAvailable, brokersScript, brokerUrls, brokers as runBrokers } from '@omnibus/test-brokers';
import kafkajs, { type Admin, type Kafka } from 'kafkajs';
import { afterAll, beforeAll } from 'vitest';
import { kafka } from '../src/index.js';

export const KAFKA_BROKERS = [...brokerUrls().kafkaBrokers];

/** Test-sized group timings: joins and rebalances in about a second instead of several. */
export const TEST_PARAMS =
  'heartbeatIntervalMs=500&sessionTimeoutMs=10000&rebalanceTimeoutMs=10000&maxWaitTimeMs=250';

export function kafkaUrl(params = TEST_PARAMS): string {
  return `kafka://${KAFKA_BROKERS.join(',')}${params === '' ? '' : `?${params}`}`;
}

export function connectKafka(options: ConnectOptions = {}, params = TEST_PARAMS): Promise<Bus> {
  return connect(kafkaUrl(params), { ...options, adapters: [kafka()] });
}

/** Whether the broker answers; under OMNIBUS_REQUIRE_BROKERS=1 a missing broker throws instead. */
export async function kafkaAvailable(): Promise<boolean> {
  const availability = await brokerAvailable('kafka');
  if (!availability.ok) console.warn(`[adapter-kafka] skipping: ${availability.reason}`);
  return availability.ok;
}

/** `scripts/brokers.sh <command> <name>` (test-brokers' runner), or undefined when the script is not there. */
export const brokers =
  brokersScript() === undefined
    ? undefined
    : (command: 'restart' | 'stop' | 'start', name = 'kafka'): Promise<void> =>
        // brokers.sh also takes kafka-N, one node of a KAFKA_NODES=3 cluster.
        runBrokers(command, name as 'kafka');

export const restartKafka = brokers === undefined ? undefined : () => brokers('restart', 'kafka');

/** A plain kafkajs client on the test cluster, for work behind the adapter's back. */
export function kafkaClient(clientId: string): Kafka {
  return new kafkajs.Kafka({ clientId, brokers: KAFKA_BROKERS, logLevel: kafkajs.logLevel.NOTHING });
}

/** A kafkajs admin client on the test cluster, for checks behind the adapter's back. */
export async function testAdmin(): Promise<Admin> {
  const admin = kafkaClient('omnibus-test-admin').admin();
  await admin.connect();
  return admin;
}

/** A kafkajs admin for the tests of the enclosing `describe`: connected before them, closed after. */
export function suiteAdmin(): () => Admin {
  let admin: Admin | undefined;
  beforeAll(async () => {
    admin = await testAdmin();
  });
  afterAll(async () => {
    await admin?.disconnect();
  });
  return () => admin!;
}

/** Resolves once `read()` returns `expected` (compared as JSON); fails with the last value after `timeoutMs`. */
export async function eventually<T>(read: () => Promise<T>, expected: T, timeoutMs = 10_000): Promise<void> {
  const dueAt = Date.now() + timeoutMs;
  let last = await read();
  while (JSON.stringify(last) !== JSON.stringify(expected) && Date.now() < dueAt) {
    await new Promise((resolve) => setTimeout(resolve, 100));
    last = await read();
  }
  if (JSON.stringify(last) !== JSON.stringify(expected)) {
    throw new Error(
      `expected ${JSON.stringify(expected)} within ${timeoutMs} ms, got ${JSON.stringify(last)}`,
    );
  }
}

/** The adapter behind a bus (tests look at its counters). */
export function adapterOf(bus: Bus): { readonly produceRequests: number } {
  return (bus as unknown as BusImpl).driverFor as unknown as { readonly produceRequests: number };
}

/** A logger that keeps what it was told. */
export function memoryLogger() {
  const lines: { level: string; message: string; fields: Record<string, unknown> }[] = [];
  const at = (level: string) => (fields: Record<string, unknown>, message: string) =>
    void lines.push({ level, message, fields });
  return { lines, logger: { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') } };
}

export function uniqueName(suffix: string): string {
  return `kt-${randomBytes(4).toString('hex')}-${suffix}`;
}

/** Runs `body` with the bus `connecting` resolves to, and closes that bus afterwards whatever happens. */
export async function withBus(connecting: Promise<Bus>, body: (bus: Bus) => Promise<void>): Promise<void> {
  const bus = await connecting;
  try {
    await body(bus);
  } finally {
    await bus.close();
  }
}
