// Claims on a queue's holder (claims.ts): one holder operation at a time across buses, against
// Mosquitto. MQTT 5 and 3.1.1.

import type { Bus } from '@omnibus/core';
import { afterEach, describe, expect, it } from 'vitest';
import { LAPSE_MS } from '../src/claims.js';
import { busWithAdapter, mosquittoAvailable } from './broker.js';

const available = await mosquittoAvailable();
if (!available.ok) console.warn(`[mqtt] skipping claim tests: ${available.reason}`);

const unique = () => `claim-${Math.random().toString(36).slice(2, 10)}`;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

for (const version of [5, 4] as const) {
  describe.skipIf(!available.ok)(`mqtt holder claims (MQTT ${version === 5 ? '5' : '3.1.1'})`, () => {
    const buses: Bus[] = [];
    const open = async () => {
      const { bus, adapter } = await busWithAdapter(`protocolVersion=${version}&holderCheckMs=0`);
      buses.push(bus);
      return adapter;
    };
    // Every test's buses close after it, whatever happened.
    afterEach(() => Promise.allSettled(buses.splice(0).map((b) => b.close())));

    it('provision claims of three buses never overlap, and each is granted', async () => {
      const adapters = [await open(), await open(), await open()];
      const queue = unique();
      const spans: [number, number][] = [];
      let holding = 0;
      let overlapped = false;
      await Promise.all(
        adapters.map(async (adapter) => {
          for (let i = 0; i < 8; i++) {
            const claim = await adapter.holders.claims.acquire(queue, 'provision');
            expect(claim).toBeDefined();
            if (++holding > 1) overlapped = true;
            const start = performance.now();
            await sleep(Math.random() * 10);
            spans.push([start, performance.now()]);
            holding--;
            await claim!.release();
          }
        }),
      );
      expect(overlapped).toBe(false);
      expect(spans).toHaveLength(24);
    });

    it('a drain claimed by another bus makes a drain or a provision skip; released, the next one is granted', async () => {
      const [a, b] = [await open(), await open()];
      const queue = unique();
      const held = await a.holders.claims.acquire(queue, 'drain');
      expect(held).toBeDefined();
      // b subscribes to the claims after a claimed: the retained claim tells it.
      expect(await b.holders.claims.acquire(queue, 'drain')).toBeUndefined();
      expect(await b.holders.claims.acquire(queue, 'provision')).toBeUndefined();
      await held!.release();
      const next = await b.holders.claims.acquire(queue, 'drain');
      expect(next).toBeDefined();
      await next!.release();
    });

    it('a provision waits for an older provision claim to be released', async () => {
      const [a, b] = [await open(), await open()];
      const queue = unique();
      const first = await a.holders.claims.acquire(queue, 'provision');
      let granted = false;
      const second = b.holders.claims.acquire(queue, 'provision').then((claim) => {
        granted = true;
        return claim;
      });
      await sleep(300);
      expect(granted).toBe(false);
      await first!.release();
      const claim = await second;
      expect(claim).toBeDefined();
      await claim!.release();
    });

    // Claims do not depend on the protocol version: the lapse (8 s) is waited for once.
    it.skipIf(version === 5)(
      'the claim of a bus that died lapses: held claims stop blocking once no longer renewed',
      async () => {
        const [a, b] = [await open(), await open()];
        const queue = unique();
        expect(await a.holders.claims.acquire(queue, 'provision')).toBeDefined();
        // a dies: no renewal, no release; its claim stays retained on the broker.
        a.holders.claims.close();
        a.publisher.client.options.reconnectPeriod = 0;
        a.publisher.client.stream.destroy();
        const started = Date.now();
        const claim = await b.holders.claims.acquire(queue, 'provision');
        expect(claim).toBeDefined();
        expect(Date.now() - started).toBeGreaterThanOrEqual(LAPSE_MS - 2500);
        await claim!.release();
      },
      30_000,
    );
  });
}
