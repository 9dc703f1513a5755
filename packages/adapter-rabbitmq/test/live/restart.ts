/**
 * The reliability promise, proven with a real broker restart in the middle of a stream of sends,
 * consumes and appends: every send and append that resolved was really stored (each confirmed
 * queue message is consumed at least once afterwards, each confirmed log entry is found at the
 * position `append` returned), no send failed (they waited for the reconnection and were
 * published again), and the bus reported the outage and the recovery.
 */
import { waitFor } from '@omnibus/contract';
import { type ConnectionState, connect, type LogPosition } from '@omnibus/core';
import { describe, expect, it } from 'vitest';
import { rabbitmq } from '../../src/index.js';
import { AMQP_URL, restartBroker } from '../broker.js';

const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export function restartTests(): void {
  describe.skipIf(restartBroker === undefined)('rabbitmq broker restart', () => {
    it('in the middle of sends, consumes and appends, every confirmed message is there afterwards', {
      timeout: 240_000,
    }, async () => {
      const tag = Math.random().toString(36).slice(2, 10);
      const bus = await connect(AMQP_URL, { adapters: [rabbitmq()], sendBuffer: { timeoutMs: 180_000 } });
      const states: ConnectionState[] = [];
      bus.on('state', (state) => states.push(state));
      const queue = bus.queue<number>(`restart-${tag}-q`);
      const log = bus.log<number>(`restart-${tag}-l`);
      const consumed = new Set<string>();
      await queue.consume((m) => void consumed.add(m.id), { concurrency: 4 });

      const sent = new Set<string>();
      const appended = new Map<string, LogPosition>();
      const failures: unknown[] = [];
      let running = true;
      const worker = async (work: (i: number) => Promise<void>) => {
        for (let i = 0; running; i++) {
          await work(i).catch((error: unknown) => failures.push(error));
          await pause(10);
        }
      };
      const workers = [
        ...Array.from({ length: 3 }, () => worker(async (i) => void sent.add((await queue.send(i)).id))),
        worker(async (i) => {
          const { id, position } = await log.append(i);
          appended.set(id, position);
        }),
      ];
      await waitFor(() => sent.size >= 50 && appended.size >= 10, 'traffic before the restart', 20_000);
      await restartBroker!();
      const afterRestart = sent.size;
      await waitFor(() => sent.size >= afterRestart + 50, 'traffic after the restart', 60_000);
      running = false;
      await Promise.all(workers);

      expect(failures).toEqual([]);
      expect(states).toContain('reconnecting');
      expect(states.at(-1)).toBe('connected');
      await waitFor(
        () => [...sent].every((id) => consumed.has(id)),
        'every confirmed send to be consumed',
        60_000,
      );

      const seen = new Map<string, number[]>();
      const reader = await bus
        .log<number>(log.name)
        .read((m) => void seen.set(m.id, [...(seen.get(m.id) ?? []), m.position!.offset]), {
          from: 'earliest',
          prefetch: 500,
        });
      await waitFor(
        () => [...appended.keys()].every((id) => seen.has(id)),
        'every confirmed append to be read',
        60_000,
      );
      for (const [id, position] of appended) expect(seen.get(id), id).toContain(position.offset);
      await reader.close();
      console.info(
        `[adapter-rabbitmq] restart: ${sent.size} sends and ${appended.size} appends confirmed, ` +
          `${consumed.size} distinct messages consumed, states ${states.join(' → ')}`,
      );
      await bus.close();
    });
  });
}
