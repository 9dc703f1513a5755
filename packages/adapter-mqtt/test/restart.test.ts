// Reliability across `scripts/brokers.sh restart mosquitto`: QoS 1 messages sent while the broker
// goes down and comes back are all delivered once it is back. Losses must be zero; duplicates are
// allowed (at-least-once) and printed.
import { type Bus, connect, TimeoutError } from '@omnibus/core';
import { describe, expect, it } from 'vitest';
import { mqtt } from '../src/index.js';
import { MQTT_URL, mosquittoAvailable, restartMosquitto } from './broker.js';

const available = await mosquittoAvailable();
const runnable = available.ok && restartMosquitto !== undefined;
if (!available.ok) console.warn(`[mqtt] skipping restart tests: ${available.reason}`);
else if (restartMosquitto === undefined) {
  console.warn(
    '[mqtt] skipping restart tests: no scripts/brokers.sh (nor OMNIBUS_BROKERS_SH) to restart Mosquitto',
  );
}

const COUNT = 300;
type Handle = (message: { readonly payload: number }) => void;
const unique = (what: string) => `rs-${Math.random().toString(36).slice(2, 10)}-${what}`;

async function waitFor(condition: () => boolean, what: () => string, timeoutMs: number): Promise<void> {
  const dueAt = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > dueAt) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what()}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** Sends `COUNT` messages, 10 at a time, while the broker restarts; resolves when all are confirmed. */
async function sendThroughRestart(send: (n: number) => Promise<unknown>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < COUNT) {
      const n = next++;
      await send(n);
      // Spread the sends over the restart instead of finishing before it starts.
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
  };
  const restarting = restartMosquitto!();
  await Promise.all([...Array.from({ length: 10 }, worker), restarting]);
}

for (const version of [5, 4] as const) {
  describe.skipIf(!runnable)(
    `mqtt ${version === 5 ? '5' : '3.1.1'}: no QoS 1 loss across a broker restart`,
    () => {
      const url = `${MQTT_URL}${MQTT_URL.includes('?') ? '&' : '?'}protocolVersion=${version}&holderCheckMs=1000&sessionExpirySec=3600`;
      const open = () => connect(url, { adapters: [mqtt()], sendBuffer: { timeoutMs: 60_000 } });

      const cases = [
        {
          what: 'queue',
          listen: (bus: Bus, name: string, handle: Handle) => bus.queue<number>(name).consume(handle),
          send: (bus: Bus, name: string, n: number) => bus.queue<number>(name).send(n),
        },
        {
          what: 'durable topic subscription',
          listen: (bus: Bus, name: string, handle: Handle) =>
            bus.topic<number>(name).subscribe('events.#', handle, { durable: unique('d') }),
          send: (bus: Bus, name: string, n: number) =>
            bus.topic<number>(name).publish(n, { subject: 'events.n' }),
        },
      ];
      for (const { what, listen, send } of cases) {
        it(what, async () => {
          const buses: Bus[] = [];
          try {
            const receiver = await open();
            const sender = await open();
            buses.push(receiver, sender);
            const name = unique('n');
            const seen = new Map<number, number>();
            await listen(receiver, name, (m) => void seen.set(m.payload, (seen.get(m.payload) ?? 0) + 1));
            await sendThroughRestart((n) => send(sender, name, n));
            await waitFor(
              () => seen.size === COUNT,
              () => `${COUNT} distinct messages (got ${seen.size})`,
              30_000,
            );
            const duplicates = [...seen.values()].reduce((sum, times) => sum + times - 1, 0);
            console.info(
              `[mqtt ${version}] ${what} across a restart: ${COUNT} sent, 0 lost, ${duplicates} duplicates`,
            );
            expect(seen.size).toBe(COUNT);
            // Closing right after the restart's drains: no subscription may hang until core's close
            // timeout (a drain once waited on a move the broker never confirmed, 1 close in 6).
            const errors: unknown[] = [];
            for (const bus of buses) bus.on('error', (error) => errors.push(error));
            await Promise.all(buses.map((bus) => bus.close()));
            expect(errors.filter((error) => error instanceof TimeoutError).map(String)).toEqual([]);
          } finally {
            await Promise.allSettled(buses.map((b) => b.close()));
          }
        }, 90_000);
      }
    },
  );
}
