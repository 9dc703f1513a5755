/**
 * Broker loss mid-stream: every append that was acknowledged is read afterwards. On one node, the
 * broker restarts (`brokers.sh restart kafka`); on a three-node cluster (`KAFKA_NODES=3`), one node
 * stops and starts again. Sends that failed were never acknowledged and do not count; duplicates
 * (a retried send that had in fact been written, a redelivery after the outage) are counted.
 */
import { waitFor } from '@omnibus/contract';
import type { Bus, ConnectionState } from '@omnibus/core';
import { describe, expect, it } from 'vitest';
import { brokers, connectKafka, testAdmin, uniqueName } from '../helpers.js';

/** Brokers in the test cluster: the broker-loss test differs for one node and for three. */
export async function clusterSize(): Promise<number> {
  const admin = await testAdmin();
  try {
    return (await admin.describeCluster()).brokers.length;
  } finally {
    await admin.disconnect();
  }
}

interface Outcome {
  readonly acked: Set<string>;
  readonly failed: number;
  /** The first few reasons sends failed. */
  readonly reasons: string[];
  readonly states: ConnectionState[];
}

/** Appends in a loop (10 in flight) until `stopWhen` is true; runs `outage` once `startAfter` appends are acked. */
async function appendThrough(bus: Bus, log: string, outage: () => Promise<void>): Promise<Outcome> {
  const acked = new Set<string>();
  const states: ConnectionState[] = [];
  bus.on('state', (state) => void states.push(state));
  let failed = 0;
  const reasons: string[] = [];
  let n = 0;
  let outageDone = false;
  let ackedAfterOutage = 0;
  const writer = async () => {
    while (!outageDone || ackedAfterOutage < 200) {
      const id = `m${n++}`;
      try {
        await bus.log<string>(log, { partitions: 3 }).append(id, { key: `k${n % 13}` });
        acked.add(id);
        if (outageDone) ackedAfterOutage++;
      } catch (error) {
        failed++;
        if (reasons.length < 3) reasons.push((error as Error).message);
      }
    }
  };
  const writers = Array.from({ length: 10 }, writer);
  await waitFor(() => acked.size >= 300, '300 appends before the outage', 30_000);
  await outage();
  outageDone = true;
  await Promise.all(writers);
  return { acked, failed, reasons, states };
}

async function readAll(bus: Bus, log: string, expected: Set<string>): Promise<Map<string, number>> {
  const seen = new Map<string, number>();
  const reader = await bus
    .log<string>(log, { partitions: 3 })
    .read((m) => void seen.set(m.payload, (seen.get(m.payload) ?? 0) + 1), {
      from: 'earliest',
      concurrency: 8,
    });
  await waitFor(() => [...expected].every((id) => seen.has(id)), 'every acknowledged append', 60_000).catch(
    () => undefined,
  );
  await reader.close();
  return seen;
}

function report(what: string, outcome: Outcome, live: Map<string, number>, log: Map<string, number>): void {
  const missing = [...outcome.acked].filter((id) => !log.has(id));
  const liveDuplicates = [...live.values()].reduce((sum, n) => sum + n - 1, 0);
  const written = [...log.values()].reduce((sum, n) => sum + n, 0);
  console.info(
    `[adapter-kafka] ${what}: ${outcome.acked.size} acknowledged, ${outcome.failed} failed sends, ` +
      `${written - log.size} records written twice, ${liveDuplicates} duplicate live deliveries, ` +
      `${missing.length} missing; states ${outcome.states.join(' → ') || '(none)'}` +
      (outcome.reasons.length === 0 ? '' : `; failures: ${outcome.reasons.join(' | ')}`),
  );
}

/**
 * Appends through `outage` while a live reader reads; then every acknowledged append must have
 * reached the live reader and be stored (read again by a fresh reader).
 */
async function survives(what: string, name: string, outage: () => Promise<void>): Promise<Outcome> {
  const options = { sendBuffer: { timeoutMs: 120_000, maxMessages: 10_000 } };
  const [producer, consumer, checker] = [
    await connectKafka(options),
    await connectKafka(options),
    await connectKafka(options),
  ];
  try {
    const log = uniqueName(name);
    await producer.log(log, { partitions: 3 }).append('start');
    const live = new Map<string, number>();
    await consumer
      .log<string>(log, { partitions: 3 })
      .read((m) => void live.set(m.payload, (live.get(m.payload) ?? 0) + 1), {
        group: 'live',
        from: 'earliest',
        concurrency: 8,
      });
    const outcome = await appendThrough(producer, log, outage);
    await waitFor(
      () => [...outcome.acked].every((id) => live.has(id)),
      'the live reader to get every acknowledged append',
      120_000,
    ).catch(() => undefined);
    const stored = await readAll(checker, log, outcome.acked);
    report(what, outcome, live, stored);
    expect([...outcome.acked].filter((id) => !stored.has(id))).toEqual([]);
    expect([...outcome.acked].filter((id) => !live.has(id))).toEqual([]);
    // The states as they were after the outage: closing the buses below adds `closed`.
    return { ...outcome, states: [...outcome.states] };
  } finally {
    await Promise.all([producer.close(), consumer.close(), checker.close()]);
  }
}

export function brokerLossTests(nodes: number): void {
  describe.runIf(brokers !== undefined)('kafka broker loss', () => {
    it.runIf(nodes === 1)(
      'every acknowledged append is read after `brokers.sh restart kafka` mid-stream',
      async () => {
        const outcome = await survives('restart', 'restart', () => brokers!('restart', 'kafka'));
        expect(outcome.states).toContain('reconnecting');
        expect(outcome.states.at(-1)).toBe('connected');
      },
      300_000,
    );

    it.runIf(nodes >= 3)(
      'every acknowledged append is read after one of three nodes stops mid-stream and comes back',
      async () => {
        await survives('node loss', 'node-loss', async () => {
          await brokers!('stop', 'kafka-2');
          await new Promise((resolve) => setTimeout(resolve, 5000));
          await brokers!('start', 'kafka-2');
        });
      },
      300_000,
    );
  });
}
