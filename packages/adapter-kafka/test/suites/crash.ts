/**
 * A kafkajs consumer that crashes (here: a non-retriable TypeError out of the delivery path, which
 * kafkajs does not restart by itself) is reported and restarted by the adapter, and the message it
 * crashed on comes back. Uses the adapter directly, without the bus, to inject the failure.
 */
import { randomUUID } from 'node:crypto';
import { waitFor } from '@omnibus/contract';
import { type Adapter, type AdapterContext, type Delivery, parseUrl } from '@omnibus/core';
import { describe, expect, it } from 'vitest';
import { kafka } from '../../src/index.js';
import { kafkaUrl, uniqueName } from '../helpers.js';

export function crashTests(): void {
  describe('kafka consumer crashes', () => {
    it('a crashed consumer is reported, restarted, and gets the message again', async () => {
      const errors: Error[] = [];
      const states: string[] = [];
      const context: AdapterContext = {
        clientId: 'crash-test',
        logger: { debug() {}, info() {}, warn() {}, error() {} },
        setState: (state) => void states.push(state),
        reportError: (error) => void errors.push(error),
      };
      const url = parseUrl(kafkaUrl());
      const adapter: Adapter = await kafka().create(
        { url, options: { ...url.params, logLevel: 'nothing' } },
        context,
      );
      try {
        const name = uniqueName('q');
        const seen: Delivery[] = [];
        let crashed = false;
        const subscription = await adapter.consume!({ name }, { prefetch: 10 }, (delivery) => {
          if (!crashed) {
            crashed = true;
            // A bug in the delivery path: kafkajs treats a TypeError as unrecoverable and stops.
            throw new TypeError('injected failure');
          }
          seen.push(delivery);
          return delivery.ack();
        });
        const send = (text: string) =>
          adapter.send!(
            { name },
            {
              id: randomUUID(),
              body: new TextEncoder().encode(text),
              headers: {},
              contentType: 'text/plain',
              timestamp: Date.now(),
            },
          );
        await send('first');
        await waitFor(() => errors.length > 0, 'the crash report', 15_000);
        expect(errors[0]!.message).toMatch(/crashed: .*injected failure.*restarting it/);
        await waitFor(() => seen.length === 1, 'the message again after the restart', 20_000);
        expect(new TextDecoder().decode(seen[0]!.body)).toBe('first');
        expect(seen[0]!.redelivered).toBe(true);
        await send('second');
        await waitFor(() => seen.length === 2, 'a later message', 15_000);
        const stats = (subscription as unknown as { stats: { crashes: number; joins: number } }).stats;
        expect(stats.crashes).toBe(1);
        expect(stats.joins).toBe(2);
        await subscription.close();
      } finally {
        await adapter.close();
      }
    }, 60_000);
  });
}
