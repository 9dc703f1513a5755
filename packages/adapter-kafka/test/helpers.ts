/**
 * Test helpers: where the Kafka broker is (KAFKA_BROKERS), whether it answers (skip, or fail under
 * OMNIBUS_REQUIRE_BROKERS=1), how to restart it, and a few probes behind the adapter's back.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { type Bus, type BusImpl, type ConnectOptions, connect } from '@omnibus/core';
import { brokerAvailable, brokerUrls } from '@omnibus/test-brokers';
import kafkajs, { type Admin } from 'kafkajs';
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

// A broker started from another clone is left alone by this clone's script (restart does nothing):
// point OMNIBUS_BROKERS_SCRIPT at the script of the clone that started it.
const repoRoot = fileURLToPath(new URL('../../../', import.meta.url));
const brokersScript = process.env.OMNIBUS_BROKERS_SCRIPT ?? `${repoRoot}scripts/brokers.sh`;

/** Runs `scripts/brokers.sh <command> <name>`, or undefined when the script is not there. */
export const brokers = existsSync(brokersScript)
  ? async (command: 'restart' | 'stop' | 'start', name = 'kafka'): Promise<void> => {
      await promisify(execFile)('bash', [brokersScript, command, name], { timeout: 180_000 });
    }
  : undefined;

export const restartKafka = brokers === undefined ? undefined : () => brokers('restart', 'kafka');

/** A kafkajs admin client on the test cluster, for checks behind the adapter's back. */
export async function testAdmin(): Promise<Admin> {
  const client = new kafkajs.Kafka({
    clientId: 'omnibus-test-admin',
    brokers: KAFKA_BROKERS,
    logLevel: kafkajs.logLevel.NOTHING,
  });
  const admin = client.admin();
  await admin.connect();
  return admin;
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
