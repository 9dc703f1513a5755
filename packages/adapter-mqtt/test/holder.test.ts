// Races around the queue holder (holder.ts), made deterministic: each test does, at the exact
// moment, what another operation or another bus did at random in a flaky run. MQTT 5 and 3.1.1.

import { waitFor } from '@omnibus/contract';
import type { Bus } from '@omnibus/core';
import { ConnectionError, TimeoutError, within } from '@omnibus/core';
import type { MqttClient } from 'mqtt';
import { afterEach, describe, expect, it } from 'vitest';
import type { MqttAdapter } from '../src/mqtt-adapter.js';
import { busWithAdapter, mosquittoAvailable } from './broker.js';

const available = await mosquittoAvailable();
if (!available.ok) console.warn(`[mqtt] skipping holder tests: ${available.reason}`);

const unique = (what: string) => `hold-${Math.random().toString(36).slice(2, 10)}-${what}`;

for (const version of [5, 4] as const) {
  describe.skipIf(!available.ok)(`mqtt holder races (MQTT ${version === 5 ? '5' : '3.1.1'})`, () => {
    const buses: Bus[] = [];
    /** A bus and the adapter instance behind it. */
    const open = async (query = '') => {
      const opened = await busWithAdapter(`protocolVersion=${version}&sessionExpirySec=3600${query}`);
      buses.push(opened.bus);
      return opened;
    };
    // Every test's buses close after it, whatever happened.
    afterEach(() => Promise.allSettled(buses.splice(0).map((b) => b.close())));

    /**
     * Makes `adapter`'s holder operations skip their claim (claims.ts): a bus that connects as the
     * holder while another bus holds it (whose claim lapsed, say). The races below are what such a
     * takeover does to the bus it takes the holder from.
     */
    const unclaimed = (adapter: MqttAdapter) => {
      adapter.holders.claims.acquire = async () => ({ release: async () => undefined });
    };

    /**
     * The next holder connection `adapter` opens has its session taken over by `taker` (another
     * bus's holder operation) right before its next SUBSCRIBE: the race seen after a broker restart,
     * when a sender provisions the holder while a consumer drains it.
     */
    /**
     * Calls `hook` with the next holder connection `adapter` opens (once); the returned function
     * says whether it has been called.
     */
    const onNextHolder = (adapter: MqttAdapter, hook: (client: MqttClient) => void) => {
      const original = adapter.receiver.bind(adapter);
      let hooked = false;
      adapter.receiver = (spec, what, onPublish) => {
        const receiver = original(spec, what, onPublish);
        if (!hooked && what.startsWith('holder')) {
          hooked = true;
          hook(receiver.client);
        }
        return receiver;
      };
      return () => hooked;
    };

    const takeOverBeforeSubscribe = (adapter: MqttAdapter, taker: () => Promise<void>) =>
      onNextHolder(adapter, (client) => {
        const subscribeAsync = client.subscribeAsync.bind(client);
        client.subscribeAsync = (async (...args: Parameters<MqttClient['subscribeAsync']>) => {
          await taker();
          await waitFor(() => !client.connected, 'the holder connection taken over');
          return subscribeAsync(...args);
        }) as MqttClient['subscribeAsync'];
      });

    it('a provision while this bus drains the holder does not take the unsettled messages over (no duplicate)', async () => {
      // The contract test "leaving the loop requeues the one not acked" got 'b' twice: a closing
      // consumer gave 'b' back, and the give-back provisioned the holder while the drain that had
      // delivered 'b' still waited to acknowledge it there.
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
    });

    it('a provision whose holder connection another bus takes over fails, and the next one works', async () => {
      // mqtt.js parks a SUBSCRIBE on a closed connection that does not reconnect and never settles
      // it: the provision held the queue's holder lock for good, and every later send waited on it.
      const other = await open();
      unclaimed(other.adapter);
      const { adapter } = await open();
      const name = unique('q');
      const hooked = takeOverBeforeSubscribe(adapter, () => other.adapter.holders.provision(name));
      const first = await within(
        adapter.holders.provision(name).then(
          () => 'resolved',
          (error: unknown) => error,
        ),
        15_000,
        'still waiting after 15 s',
      );
      expect(hooked()).toBe(true);
      expect(first).toBeInstanceOf(ConnectionError);
      expect((first as ConnectionError).retriable).toBe(true);
      expect(
        await within(
          adapter.holders.provision(name).then(() => 'resolved'),
          15_000,
          'stalled',
        ),
      ).toBe('resolved');
    });

    it('a drain whose holder connection another bus takes over neither stalls the consumer nor loses the message', async () => {
      // The restart fault test: a consumer back after a broker restart drains the holder while a
      // sender provisions it. The drain waited forever on a SUBSCRIBE, holding the holder lock, so
      // its message was never taken and the consumer's close hung (1 run in 3).
      const sender = await open();
      unclaimed(sender.adapter);
      const name = unique('q');
      await sender.bus.queue<string>(name).send('x');
      const { bus, adapter } = await open('&holderCheckMs=200');
      const errors: Error[] = [];
      bus.on('error', (e) => void errors.push(e));
      const hooked = takeOverBeforeSubscribe(adapter, () => sender.adapter.holders.provision(name));
      const got: string[] = [];
      const consumer = await bus.queue<string>(name).consume((m) => void got.push(m.payload));
      await waitFor(hooked, 'the drain connecting as the holder');
      // The next holder check takes 'x' over.
      await waitFor(() => got.includes('x'), "the holder's message", 15_000).catch(() => undefined);
      expect(got).toEqual(['x']);
      const closing = Date.now();
      await consumer.close();
      expect(Date.now() - closing, 'the consumer closed in time').toBeLessThan(10_000);
      expect(errors.filter((e) => e instanceof TimeoutError).map(String)).toEqual([]);
    });

    it("a drain that loses the holder's session while it waits for its marker lets the consumer go on at once, and the marker never becomes a message", async () => {
      // The 3.1.1 contract test "competing consumers …" took 10 s: a second consumer's drain lost
      // the holder's session to a sender's provision right after subscribing to its drain marker.
      // It then waited the whole marker timeout with its live messages held back, and the marker,
      // stored in the holder's session, was later moved to the queue by a sweep as an empty message.
      const sender = await open();
      unclaimed(sender.adapter);
      const name = unique('q');
      // A first consumer leaves the holder's session on the broker (3.1.1: empty; 5: ended).
      await (await sender.bus.queue<string>(name).consume(() => undefined)).close();
      await sender.adapter.holders.provision(name);
      const { bus, adapter } = await open('&holderCheckMs=200');
      const deadLetters: string[] = [];
      bus.on('deadLetter', (e) => void deadLetters.push(e.reason));
      let drainClient: MqttClient | undefined;
      onNextHolder(adapter, (client) => {
        drainClient = client;
      });
      const publish = adapter.publisher.publish.bind(adapter.publisher);
      let hooked = false;
      adapter.publisher.publish = async (...args: Parameters<typeof publish>) => {
        if (!hooked && args[0].includes('/~drain/')) {
          hooked = true;
          // The drain subscribed to its marker: now the sender's provision takes the session over.
          await sender.adapter.holders.provision(name);
          await waitFor(() => drainClient?.connected === false, 'the drain connection taken over');
        }
        return publish(...args);
      };
      const got: string[] = [];
      await bus.queue<string>(name).consume((m) => void got.push(m.payload));
      await waitFor(() => hooked, 'the drain subscribed to its marker');
      const sent = Date.now();
      await bus.queue<string>(name).send('live');
      await waitFor(() => got.includes('live'), 'the live message', 15_000);
      // Held back for the marker timeout (10 s) before, whether it went to the consumer or to the
      // holder (whose sweeps wait for the drain); now as long as a holder check (200 ms).
      expect(Date.now() - sent, "the live message's wait").toBeLessThan(5000);
      // A sweep takes what the holder's session stored (the lost marker, on the old code) over.
      await adapter.holders.drain(name);
      await bus.queue<string>(name).send('last');
      await waitFor(() => got.includes('last'), 'the last message', 15_000);
      expect(got).toEqual(['live', 'last']);
      expect(deadLetters).toEqual([]);
    });

    it('two buses sweeping one holder at the same moment move each of its messages once', async () => {
      // The 3.1.1 contract test "competing consumers handle each message exactly once" got 53
      // deliveries for 40 messages: both consumers' buses swept the holder at the same moment. The
      // second connection took the holder's session over before the first had acknowledged the
      // messages it had moved, so the broker gave them to the second, which moved them again.
      const name = unique('q');
      const a = await open('&holderCheckMs=0');
      const b = await open('&holderCheckMs=0');
      const sender = await open();
      const handled: number[] = [];
      for (const { bus } of [a, b])
        await bus.queue<number>(name).consume((m) => void handled.push(m.payload));
      // The holder joins the share group beside the two consumers and takes its share of 30.
      await sender.adapter.holders.provision(name);
      for (let i = 0; i < 30; i++) await sender.bus.queue<number>(name).send(i);
      await waitFor(() => handled.length >= 10, "the consumers' shares");
      const queued = (adapter: MqttAdapter) =>
        (adapter.holders as unknown as { queues: Map<string, { draining?: unknown }> }).queues.get(name);
      for (let round = 0; round < 3; round++) {
        await Promise.all([a.adapter.holders.drain(name), b.adapter.holders.drain(name)]);
        await waitFor(
          () => queued(a.adapter)?.draining === undefined && queued(b.adapter)?.draining === undefined,
          'both sweeps done',
          15_000,
        );
      }
      await waitFor(
        () => new Set(handled).size === 30,
        `30 distinct messages (got ${new Set(handled).size})`,
      );
      // Every move was confirmed by the broker before its sweep ended: a copy moved twice is
      // already on its way to a consumer.
      await new Promise((resolve) => setTimeout(resolve, 500));
      expect([...handled].sort((x, y) => x - y)).toEqual([...Array(30).keys()]);
    });

    it('a consumer that finds no holder does not delete one another bus provisions meanwhile', async () => {
      // The SIGKILL fault test on 3.1.1 lost every other message: a starting consumer connected as
      // the holder, found no session, and ended it by connecting again with a clean session — after
      // another bus had provisioned the holder and sent to it.
      const sender = await open();
      unclaimed(sender.adapter);
      const name = unique('q');
      const { bus, adapter } = await open('&holderCheckMs=200');
      const hooked = onNextHolder(adapter, (holder) => {
        // Between the starting consumer's CONNACK (no session) and its goodbye, the other bus
        // provisions the holder and sends: the round-robin gives the holder every other one.
        const client = holder as MqttClient & {
          endAsync: (...args: unknown[]) => Promise<void>;
        };
        const endAsync = client.endAsync.bind(client);
        client.endAsync = async (...args: unknown[]) => {
          await sender.adapter.holders.provision(name);
          for (let i = 0; i < 6; i++) await sender.bus.queue<string>(name).send(`m${i}`);
          return endAsync(...(args as Parameters<MqttClient['endAsync']>));
        };
      });
      const got = new Set<string>();
      await bus.queue<string>(name).consume((m) => void got.add(m.payload));
      await waitFor(hooked, 'the consumer connecting as the holder');
      // The holder's share reaches the consumer through its next holder check (200 ms).
      await waitFor(() => got.size === 6, 'all six messages', 15_000).catch(() => undefined);
      expect([...got].sort()).toEqual(['m0', 'm1', 'm2', 'm3', 'm4', 'm5']);
    });
  });
}
