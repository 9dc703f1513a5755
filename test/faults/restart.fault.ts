/**
 * Fault 3: the broker restarts (`scripts/brokers.sh restart <broker>`) while sends and consumption
 * run. Every confirmed send arrives (at-least-once); duplicates are counted, not failed; the time
 * from the broker answering again to the next confirmed send is printed.
 *
 * Restarts the shared broker: run it when nothing else uses the brokers (CI does). When the brokers
 * were started from another clone, point OMNIBUS_BROKERS_SH at that clone's scripts/brokers.sh, or
 * the restart does nothing (the test then fails: the bus never saw the connection go).
 */
import { brokerAvailable, brokers } from '@omnibus/test-brokers';
import { describe, expect, it } from 'vitest';
import {
  countsOf,
  drain,
  guardProcess,
  open,
  report,
  seconds,
  startStream,
  uniqueName,
  until,
  type Watched,
} from './harness.js';
import { selectedSetups } from './setups.js';

guardProcess();

for (const setup of selectedSetups()) {
  const availability = await brokerAvailable(setup.broker);
  describe.skipIf(!availability.ok)(`broker restart: ${setup.name}`, () => {
    it('every confirmed send arrives after a restart mid-stream', { timeout: 600_000 }, async () => {
      const buses: Watched[] = [];
      try {
        // A restart takes 20–40 s on these machines: sends wait up to 180 s for the connection.
        const options = { sendBuffer: { timeoutMs: 180_000, maxMessages: 10_000 } };
        const producer = await open(setup, setup.endpoints, options);
        buses.push(producer);
        const consumer = await open(setup, setup.endpoints, options);
        buses.push(consumer);
        const stream = await startStream(producer.bus, consumer.bus, uniqueName('restart'));
        try {
          expect(
            await until(() => stream.confirmed.size >= 100, 30_000),
            '100 sends before the restart',
          ).toBe(true);
          const faultAt = Date.now();
          await brokers('restart', setup.process);
          const upAt = Date.now();
          const recovered = await until(
            () =>
              producer.bus.health().state === 'connected' &&
              consumer.bus.health().state === 'connected' &&
              stream.confirmedSince(upAt) >= 50,
            180_000,
            100,
          );
          const recoveredAt = Date.now();
          await stream.stop();
          await drain(stream, 180_000);
          const counts = countsOf(stream);
          // The clients are usually back before brokers.sh sees the broker answer (it polls), so
          // recovery is the pause the sender saw: no confirmation from the stop to the first after it.
          report({
            setup: setup.name,
            fault: 'broker restart',
            counts,
            recover: {
              ms: recovered ? stream.longestPause(faultAt, recoveredAt) : undefined,
              from: 'without confirmations',
            },
            key: `restart took ${seconds(upAt - faultAt)}`,
            timings: {
              restart: upAt - faultAt,
              'producer down': (producer.firstAt('reconnecting', faultAt) ?? Number.NaN) - faultAt,
              'producer reconnected': (producer.firstAt('connected', faultAt) ?? Number.NaN) - faultAt,
              'consumer reconnected': (consumer.firstAt('connected', faultAt) ?? Number.NaN) - faultAt,
              '50 confirmed after broker up': recovered ? recoveredAt - upAt : undefined,
            },
          });
          expect(
            producer.firstAt('reconnecting', faultAt),
            'the bus saw the broker go (if not, the restart did nothing: set OMNIBUS_BROKERS_SH to the script that started the brokers)',
          ).toBeDefined();
          expect(recovered, 'both buses connected and sending within 180 s of the broker answering').toBe(
            true,
          );
          expect(counts.missing.slice(0, 10), 'confirmed sends that never arrived').toEqual([]);
        } finally {
          await stream.stop();
        }
      } finally {
        await Promise.all(buses.map((w) => w.bus.close().catch(() => undefined)));
      }
    });
  });
  if (!availability.ok) console.warn(`[faults] skipping ${setup.name}: ${availability.reason}`);
}
