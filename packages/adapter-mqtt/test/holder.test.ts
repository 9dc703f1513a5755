// Races around the queue holder (holder.ts), made deterministic: each test does, at the exact
// moment, what another operation or another bus did at random in a flaky run. MQTT 5 and 3.1.1.

import { waitFor } from '@omnibus/contract';
import type { AdapterFactory, Bus } from '@omnibus/core';
import { connect } from '@omnibus/core';
import type { MqttClient } from 'mqtt';
import { describe, expect, it } from 'vitest';
import { mqtt } from '../src/index.js';
import type { MqttAdapter } from '../src/mqtt-adapter.js';
import { mosquittoAvailable, withQuery } from './broker.js';

const available = await mosquittoAvailable();
if (!available.ok) console.warn(`[mqtt] skipping holder tests: ${available.reason}`);

const unique = (what: string) => `hold-${Math.random().toString(36).slice(2, 10)}-${what}`;

for (const version of [5, 4] as const) {
  describe.skipIf(!available.ok)(`mqtt holder races (MQTT ${version === 5 ? '5' : '3.1.1'})`, () => {
    const buses: Bus[] = [];
    /** A bus and the adapter instance behind it. */
    const open = async (query = '') => {
      let adapter: MqttAdapter | undefined;
      const factory = mqtt();
      const capturing: AdapterFactory = {
        ...factory,
        create: async (target, context) => {
          adapter = (await factory.create(target, context)) as MqttAdapter;
          return adapter;
        },
      };
      const bus = await connect(withQuery(`protocolVersion=${version}&sessionExpirySec=3600${query}`), {
        adapters: [capturing],
      });
      bus.on('error', () => undefined);
      buses.push(bus);
      return { bus, adapter: adapter! };
    };
    const closeAll = () => Promise.allSettled(buses.splice(0).map((b) => b.close()));

    it('a provision while this bus drains the holder does not take the unsettled messages over (no duplicate)', async () => {
      // The contract test "leaving the loop requeues the one not acked" got 'b' twice: a closing
      // consumer gave 'b' back, and the give-back provisioned the holder while the drain that had
      // delivered 'b' still waited to acknowledge it there.
      try {
        const { bus, adapter } = await open();
        const name = unique('q');
        const queue = bus.queue<string>(name);
        await queue.send('x');
        const got: string[] = [];
        let release!: () => void;
        const released = new Promise<void>((resolve) => {
          release = resolve;
        });
        const consumer = await queue.consume(async (m) => {
          got.push(m.payload);
          if (got.length === 1) await released;
        });
        // 'x' came from the holder, through the drain's connection, and is not acknowledged yet.
        await waitFor(() => got.length === 1, "the holder's message in a handler");
        await adapter.holders.provision(name);
        release();
        await consumer.close();
        // A new consumer drains the holder, handing its messages over ahead of live ones.
        await queue.consume((m) => void got.push(m.payload));
        await queue.send('y');
        await waitFor(() => got.includes('y'), 'the live message');
        expect(got).toEqual(['x', 'y']);
      } finally {
        await closeAll();
      }
    });

    it('a consumer that finds no holder does not delete one another bus provisions meanwhile', async () => {
      // The SIGKILL fault test on 3.1.1 lost every other message: a starting consumer connected as
      // the holder, found no session, and ended it by connecting again with a clean session — after
      // another bus had provisioned the holder and sent to it.
      try {
        const sender = await open();
        const name = unique('q');
        const { bus, adapter } = await open('&holderCheckMs=200');
        const original = adapter.receiver.bind(adapter);
        let hooked = false;
        adapter.receiver = (spec, what, onPublish) => {
          const receiver = original(spec, what, onPublish);
          if (!hooked && what.startsWith('holder')) {
            hooked = true;
            // Between the starting consumer's CONNACK (no session) and its goodbye, the other bus
            // provisions the holder and sends: the round-robin gives the holder every other one.
            const client = receiver.client as MqttClient & {
              endAsync: (...args: unknown[]) => Promise<void>;
            };
            const endAsync = client.endAsync.bind(client);
            client.endAsync = async (...args: unknown[]) => {
              await sender.adapter.holders.provision(name);
              for (let i = 0; i < 6; i++) await sender.bus.queue<string>(name).send(`m${i}`);
              return endAsync(...(args as Parameters<MqttClient['endAsync']>));
            };
          }
          return receiver;
        };
        const got = new Set<string>();
        await bus.queue<string>(name).consume((m) => void got.add(m.payload));
        expect(hooked).toBe(true);
        // The holder's share reaches the consumer through its next holder check (200 ms).
        await waitFor(() => got.size === 6, 'all six messages', 15_000).catch(() => undefined);
        expect([...got].sort()).toEqual(['m0', 'm1', 'm2', 'm3', 'm4', 'm5']);
      } finally {
        await closeAll();
      }
    });
  });
}
