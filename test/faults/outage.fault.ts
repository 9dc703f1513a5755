/**
 * Fault 4: the broker is stopped for longer than the send timeout. What the bounded send buffer
 * promises, on every set-up:
 *  - memory stays bounded: no more than `sendBuffer.maxMessages` sends wait (`health().pendingSends`,
 *    sampled every 20 ms), and the sends beyond it fail at once with `CapacityError`;
 *  - a send that waited longer than `sendBuffer.timeoutMs` fails with `TimeoutError`;
 *  - nothing fails with anything else, and nothing that was confirmed is lost: sends made with a
 *    timeout longer than the outage are confirmed once `brokers.sh start` brings the broker back,
 *    and every confirmed send (before and after the outage) reaches the consumer.
 *
 * Stops the shared broker: run it when nothing else uses the brokers (CI does).
 */
import { CapacityError, TimeoutError } from '@omnibus/core';
import { brokerAvailable, brokers } from '@omnibus/test-brokers';
import { describe, expect, it } from 'vitest';
import {
  countsOf,
  drain,
  guardProcess,
  open,
  report,
  sleep,
  uniqueName,
  until,
  type Watched,
} from './harness.js';
import { selectedSetups } from './setups.js';

guardProcess();

const BUFFER = 50;
const OVERFLOW = 30;
const SHORT_TIMEOUT_MS = 5000;

for (const setup of selectedSetups()) {
  const availability = await brokerAvailable(setup.broker);
  describe.skipIf(!availability.ok)(`broker stopped: ${setup.name}`, () => {
    it('bounded buffer, typed failures, and every confirmed send arrives after the broker starts', {
      timeout: 600_000,
    }, async () => {
      const buses: Watched[] = [];
      let stopped = false;
      try {
        const impatient = await open(setup, setup.endpoints, {
          sendBuffer: { maxMessages: BUFFER, timeoutMs: SHORT_TIMEOUT_MS },
        });
        buses.push(impatient);
        const patient = await open(setup, setup.endpoints, {
          sendBuffer: { maxMessages: 10_000, timeoutMs: 300_000 },
        });
        buses.push(patient);
        const consumer = await open(setup, setup.endpoints, { sendBuffer: { timeoutMs: 300_000 } });
        buses.push(consumer);
        const queue = uniqueName('outage');
        const received = new Map<string, number>();
        await consumer.bus
          .queue<string>(queue)
          .consume((m) => void received.set(m.payload, (received.get(m.payload) ?? 0) + 1), {
            concurrency: 8,
          });
        const confirmed = new Set<string>();
        let sent = 0;
        const send = async (bus: Watched, id: string) => {
          sent++;
          await bus.bus.queue<string>(queue).send(id);
          confirmed.add(id);
        };
        for (let i = 0; i < 20; i++) await send(patient, `before${i}`);

        const stopAt = Date.now();
        await brokers('stop', setup.process);
        stopped = true;
        expect(
          await until(() => impatient.bus.health().state !== 'connected', 60_000),
          'the bus saw the broker stop (if not, set OMNIBUS_BROKERS_SH to the script that started the brokers)',
        ).toBe(true);

        // Wave 1, on the impatient bus: BUFFER + OVERFLOW sends at once into an outage longer
        // than their timeout.
        let maxPending = 0;
        const sampler = setInterval(() => {
          maxPending = Math.max(maxPending, impatient.bus.health().pendingSends);
        }, 20);
        const wave1 = await Promise.allSettled(
          Array.from({ length: BUFFER + OVERFLOW }, (_, i) => send(impatient, `impatient${i}`)),
        );
        clearInterval(sampler);
        const errors = wave1.flatMap((r) => (r.status === 'rejected' ? [r.reason as unknown] : []));
        const capacity = errors.filter((e) => e instanceof CapacityError).length;
        const timeouts = errors.filter((e) => e instanceof TimeoutError).length;
        const other = errors.filter((e) => !(e instanceof CapacityError) && !(e instanceof TimeoutError));

        // Wave 2, on the patient bus: waits through the rest of the outage and the start.
        const wave2 = Array.from({ length: 40 }, (_, i) =>
          send(patient, `patient${i}`).catch(() => undefined),
        );
        await sleep(2000);
        const startAt = Date.now();
        await brokers('start', setup.process);
        stopped = false;
        const upAt = Date.now();
        await Promise.all(wave2);
        const wave2ConfirmedAt = Date.now();
        await drain({ confirmed, received }, 180_000);
        const counts = countsOf({ sent: () => sent, confirmed, received });
        const reconnectedAt = patient.firstAt('connected', startAt);
        report({
          setup: setup.name,
          fault: 'broker stopped > send timeout',
          counts,
          recover: {
            ms: reconnectedAt === undefined ? undefined : wave2ConfirmedAt - reconnectedAt,
            from: 'reconnect → 40 waiting sends confirmed',
          },
          key: `CapacityError ${capacity}, TimeoutError ${timeouts}, max pending ${maxPending}/${BUFFER}`,
          timings: { outage: upAt - stopAt, start: upAt - startAt },
          notes:
            `buffer ${BUFFER}, timeout ${SHORT_TIMEOUT_MS} ms: ${BUFFER + OVERFLOW} sends → CapacityError ${capacity}, ` +
            `TimeoutError ${timeouts}, other ${other.length}, max pendingSends ${maxPending}; ` +
            `patient sends confirmed ${[...confirmed].filter((id) => id.startsWith('patient')).length}/40`,
        });
        expect(other.map(String), 'failures other than CapacityError / TimeoutError').toEqual([]);
        expect(maxPending, 'sends waiting at once').toBeLessThanOrEqual(BUFFER);
        expect(capacity, 'sends beyond the buffer failed at once').toBeGreaterThanOrEqual(OVERFLOW);
        expect(capacity + timeouts, 'no impatient send was confirmed during the outage').toBe(
          BUFFER + OVERFLOW,
        );
        expect(
          [...confirmed].filter((id) => id.startsWith('patient')).length,
          'patient sends confirmed',
        ).toBe(40);
        expect(counts.missing, 'confirmed sends that never arrived').toEqual([]);
      } finally {
        // Never leave a shared broker stopped.
        if (stopped) await brokers('start', setup.process);
        await Promise.all(buses.map((w) => w.bus.close().catch(() => undefined)));
      }
    });
  });
  if (!availability.ok) console.warn(`[faults] skipping ${setup.name}: ${availability.reason}`);
}
