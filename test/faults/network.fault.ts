/**
 * Fault 1: the network between client and broker breaks, through a fault-injecting TCP proxy (the
 * broker other tests share is not touched). A connection reset mid-stream: every confirmed send is
 * delivered, the time to recover is printed. A silent blackhole (no FIN, no RST, bytes dropped):
 * only heart-beats / keepalives / request timeouts can tell, and the time until the bus reports
 * `reconnecting` is asserted against a bound derived from the configured interval, plus a margin
 * proportional to the event-loop delay measured during the test.
 */
import { brokerAvailable } from '@omnibus/test-brokers';
import { describe, expect, it } from 'vitest';
import {
  countsOf,
  diagnoseMissing,
  drain,
  guardProcess,
  loopDelay,
  marginMs,
  open,
  type Proxies,
  proxiesFor,
  report,
  seconds,
  startStream,
  uniqueName,
  until,
  type Watched,
} from './harness.js';
import { type Setup, selectedSetups } from './setups.js';

guardProcess();

async function withStream(
  setup: Setup,
  body: (ctx: {
    proxies: Proxies;
    producer: Watched;
    consumer: Watched;
    stream: Awaited<ReturnType<typeof startStream>>;
    queue: string;
  }) => Promise<void>,
): Promise<void> {
  const proxies = await proxiesFor(setup);
  const buses: Watched[] = [];
  try {
    const producer = await open(setup, proxies.endpoints);
    buses.push(producer);
    const consumer = await open(setup, proxies.endpoints);
    buses.push(consumer);
    const queue = uniqueName('net');
    const stream = await startStream(producer.bus, consumer.bus, queue);
    try {
      expect(
        await until(() => stream.confirmed.size >= 100, 30_000),
        '100 sends confirmed before the fault',
      ).toBe(true);
      await body({ proxies, producer, consumer, stream, queue });
    } finally {
      await stream.stop();
    }
  } finally {
    proxies.heal();
    await Promise.all(buses.map((w) => w.bus.close().catch(() => undefined)));
    await proxies.close();
  }
}

for (const setup of selectedSetups()) {
  const availability = await brokerAvailable(setup.broker);
  describe.skipIf(!availability.ok)(`network faults: ${setup.name}`, () => {
    it('connection reset mid-stream: every confirmed send arrives', async () => {
      await withStream(setup, async ({ proxies, producer, consumer, stream, queue }) => {
        const faultAt = Date.now();
        proxies.reset();
        // Recovered: both buses connected again and 50 more sends confirmed after the reset.
        const recovered = await until(
          () =>
            producer.bus.health().state === 'connected' &&
            consumer.bus.health().state === 'connected' &&
            stream.confirmedSince(faultAt) >= 50,
          60_000,
        );
        const recoveredAt = Date.now();
        await stream.stop();
        await drain(stream);
        const counts = countsOf(stream);
        report({
          setup: setup.name,
          fault: 'connection reset',
          counts,
          recover: { ms: recovered ? recoveredAt - faultAt : undefined, from: 'after the reset' },
          timings: {
            'producer reconnected': (producer.firstAt('connected', faultAt) ?? Number.NaN) - faultAt,
            'consumer reconnected': (consumer.firstAt('connected', faultAt) ?? Number.NaN) - faultAt,
          },
          notes:
            failuresNote(stream.failures) +
            (await diagnoseMissing(setup, consumer.bus, queue, counts.missing)),
        });
        expect(recovered, 'recovered within 60 s').toBe(true);
        expect(counts.missing.slice(0, 10), 'confirmed sends that never arrived').toEqual([]);
      });
    });

    it('silent blackhole: heart-beats detect it within the bound derived from their interval', async () => {
      await withStream(setup, async ({ proxies, producer, consumer, stream, queue }) => {
        const loop = loopDelay();
        const faultAt = Date.now();
        proxies.blackhole();
        const detected = await until(
          () =>
            producer.firstAt('reconnecting', faultAt) !== undefined &&
            consumer.firstAt('reconnecting', faultAt) !== undefined,
          Math.max(60_000, setup.silentDetectMs * 10),
        );
        const measured = loop.stop();
        const healAt = Date.now();
        proxies.heal();
        const recovered = await until(
          () =>
            producer.bus.health().state === 'connected' &&
            consumer.bus.health().state === 'connected' &&
            stream.confirmedSince(healAt) >= 50,
          60_000,
        );
        const recoveredAt = Date.now();
        await stream.stop();
        await drain(stream);
        const counts = countsOf(stream);
        const producerDetect = (producer.firstAt('reconnecting', faultAt) ?? Number.NaN) - faultAt;
        const consumerDetect = (consumer.firstAt('reconnecting', faultAt) ?? Number.NaN) - faultAt;
        const bound = Math.round(1.5 * setup.silentDetectMs) + marginMs(measured);
        report({
          setup: setup.name,
          fault: 'blackhole',
          counts,
          recover: { ms: recovered ? recoveredAt - healAt : undefined, from: 'after heal' },
          key: `detected ${seconds(producerDetect)} / ${seconds(consumerDetect)} (bound ${seconds(bound)})`,
          timings: { 'producer detect': producerDetect, 'consumer detect': consumerDetect, bound },
          notes:
            `bound = 1.5 × ${setup.detectRule} + 500 ms + 3 × loop delay max ${measured.maxMs.toFixed(0)} ms` +
            failuresNote(stream.failures, '; ') +
            (await diagnoseMissing(setup, consumer.bus, queue, counts.missing)),
        });
        expect(detected, 'both buses reported reconnecting').toBe(true);
        expect(producerDetect).toBeLessThanOrEqual(bound);
        expect(consumerDetect).toBeLessThanOrEqual(bound);
        expect(recovered, 'recovered within 60 s of healing').toBe(true);
        expect(counts.missing.slice(0, 10), 'confirmed sends that never arrived').toEqual([]);
      });
    });
  });
  if (!availability.ok) console.warn(`[faults] skipping ${setup.name}: ${availability.reason}`);
}

function failuresNote(failures: Map<string, number>, prefix = ''): string {
  if (failures.size === 0) return '';
  return `${prefix}failed sends: ${[...failures].map(([name, n]) => `${name} ${n}`).join(', ')}`;
}
