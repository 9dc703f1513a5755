/**
 * Fault 2: a consumer process is SIGKILLed while its handler runs. The message it held was never
 * acknowledged, so the broker gives it to another consumer (here, the test process): nothing is
 * lost, duplicates are counted.
 *
 * MQTT is the exception the docs state: a queue consumer is a share-group member with a persistent
 * session, and Mosquitto keeps what that session held (and its round-robin share) until the same
 * client id comes back. So on MQTT the replacement takes the killed process's client id, as a
 * restarted instance of the same service would.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { brokerAvailable } from '@omnibus/test-brokers';
import { describe, expect, it } from 'vitest';
import {
  countsOf,
  diagnoseMissing,
  guardProcess,
  open,
  report,
  uniqueName,
  until,
  type Watched,
} from './harness.js';
import { type Setup, selectedSetups } from './setups.js';

guardProcess();

const CHILD = fileURLToPath(new URL('./child-consumer.ts', import.meta.url));
const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const MESSAGES = 20;

interface Child {
  readonly process: ChildProcess;
  readonly handling: string[];
  readonly escaped: string[];
  ready: boolean;
  readonly stderr: string[];
}

function startChild(setup: Setup, queue: string, clientId: string): Child {
  const child = spawn(process.execPath, ['--import', 'tsx', '--conditions=source', CHILD], {
    cwd: ROOT,
    env: {
      ...process.env,
      FAULT_SETUP: setup.name,
      FAULT_URL: setup.url(setup.endpoints),
      FAULT_QUEUE: queue,
      FAULT_CLIENT_ID: clientId,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const state: Child = { process: child, handling: [], escaped: [], ready: false, stderr: [] };
  createInterface({ input: child.stdout! }).on('line', (line) => {
    try {
      const event = JSON.parse(line) as { event: string; payload?: string; what?: string };
      if (event.event === 'ready') state.ready = true;
      if (event.event === 'handling') state.handling.push(String(event.payload));
      if (event.event === 'escaped') state.escaped.push(String(event.what));
    } catch {
      // not one of ours
    }
  });
  createInterface({ input: child.stderr! }).on('line', (line) => {
    if (state.stderr.length < 20) state.stderr.push(line);
  });
  return state;
}

for (const setup of selectedSetups()) {
  const availability = await brokerAvailable(setup.broker);
  describe.skipIf(!availability.ok)(`consumer SIGKILL: ${setup.name}`, () => {
    it('the message a killed consumer held reaches another consumer', async () => {
      const queue = uniqueName('kill');
      const childId = `fault-child-${Math.random().toString(36).slice(2, 8)}`;
      const buses: Watched[] = [];
      const child = startChild(setup, queue, childId);
      try {
        const ready = await until(() => child.ready || child.process.exitCode !== null, 60_000);
        expect(ready && child.ready, `the child consumer started (stderr: ${child.stderr.join(' / ')})`).toBe(
          true,
        );
        const producer = await open(setup, setup.endpoints);
        buses.push(producer);
        const confirmed = new Set<string>();
        for (let i = 0; i < MESSAGES; i++) {
          await producer.bus.queue<string>(queue).send(`k${i}`);
          confirmed.add(`k${i}`);
        }
        expect(await until(() => child.handling.length > 0, 30_000), 'the child is in a handler').toBe(true);
        const held = child.handling[0]!;
        child.process.kill('SIGKILL');
        const killedAt = Date.now();
        await until(() => child.process.exitCode !== null || child.process.signalCode !== null, 10_000);

        const received = new Map<string, number>();
        const arrivedAt = new Map<string, number>();
        const replacement = await open(setup, setup.endpoints, {
          ...(setup.process === 'mosquitto' ? { clientId: childId } : {}),
        });
        buses.push(replacement);
        await replacement.bus.queue<string>(queue).consume(
          (m) => {
            received.set(m.payload, (received.get(m.payload) ?? 0) + 1);
            if (!arrivedAt.has(m.payload)) arrivedAt.set(m.payload, Date.now());
          },
          { concurrency: 1 },
        );
        await until(() => [...confirmed].every((id) => received.has(id)), 60_000, 100);
        const counts = countsOf({ sent: () => MESSAGES, confirmed, received });
        const heldAt = arrivedAt.get(held);
        const diagnosis = await diagnoseMissing(setup, replacement.bus, queue, counts.missing);
        report({
          setup: setup.name,
          fault: 'consumer SIGKILL',
          counts,
          recover: {
            ms: heldAt === undefined ? undefined : heldAt - killedAt,
            from: 'kill → held message at the replacement',
          },
          notes:
            `child held ${held} (handled ${child.handling.length} before the kill)` +
            (setup.process === 'mosquitto' ? '; replacement reuses the client id' : '') +
            (diagnosis === '' ? '' : `; ${diagnosis}`),
        });
        expect(child.escaped, 'escaped in the child').toEqual([]);
        expect(received.has(held), `the held message ${held} reached the replacement`).toBe(true);
        expect(counts.missing, 'confirmed sends that never arrived').toEqual([]);
      } finally {
        if (child.process.exitCode === null && child.process.signalCode === null)
          child.process.kill('SIGKILL');
        await Promise.all(buses.map((w) => w.bus.close().catch(() => undefined)));
      }
    });
  });
  if (!availability.ok) console.warn(`[faults] skipping ${setup.name}: ${availability.reason}`);
}
