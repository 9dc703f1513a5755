/**
 * Logs on RabbitMQ streams: the offsets `append` returns are the offsets readers see (the appender
 * reads its entries back), concurrently too; a group has one active reader, and a standby takes
 * over from the committed offset when the active one leaves.
 */
import { uniqueName, waitFor } from '@omnibus/contract';
import { type Bus, connect, type LogPosition } from '@omnibus/core';
import { describe, expect, it } from 'vitest';
import { rabbitmq } from '../../src/index.js';
import { AMQP_URL, openBuses } from '../broker.js';

/** Destroys the bus's socket, as a crash or a network failure would: no close, no final commit. */
function dropConnection(bus: Bus): void {
  const driver = (
    bus as unknown as {
      driver: { session: { model?: { connection: { stream: { destroy(error: Error): void } } } } };
    }
  ).driver;
  const model = driver.session.model;
  if (model === undefined) throw new Error('not connected');
  model.connection.stream.destroy(new Error('simulated network failure'));
}

export function logTests(): void {
  describe('rabbitmq logs (streams)', () => {
    const open = openBuses();

    it('append returns the offset a reader sees, for concurrent appends from two connections', async () => {
      const log = uniqueName('l');
      const [a, b] = [await open(), await open()];
      const appended = new Map<string, LogPosition>();
      await Promise.all(
        [a, b].flatMap((bus, who) =>
          Array.from({ length: 100 }, async (_, i) => {
            const { id, position } = await bus.log<string>(log).append(`${who}-${i}`);
            appended.set(id, position);
          }),
        ),
      );
      expect(new Set([...appended.values()].map((p) => p.offset)).size).toBe(200);
      const read = new Map<string, LogPosition>();
      await (await open()).log(log).read((m) => void read.set(m.id, m.position!), { from: 'earliest' });
      await waitFor(() => read.size === 200, '200 entries');
      expect(read).toEqual(appended);
    });

    it('a standby reader of a group takes over from the committed offset when the active one closes', async () => {
      const log = uniqueName('l');
      const group = uniqueName('g');
      const query = '?groupTakeoverMs=100&commitIntervalMs=50';
      const writer = (await open()).log<number>(log);
      for (let i = 0; i < 5; i++) await writer.append(i);
      const first: number[] = [];
      const second: number[] = [];
      const active = await (await open(query))
        .log<number>(log)
        .read((m) => void first.push(m.payload), { group });
      await waitFor(() => first.length === 5, 'the active reader');
      await (await open(query)).log<number>(log).read((m) => void second.push(m.payload), { group });
      for (let i = 5; i < 8; i++) await writer.append(i);
      await waitFor(() => first.length === 8, 'the active reader to go on');
      expect(second).toEqual([]);
      await active.close();
      for (let i = 8; i < 10; i++) await writer.append(i);
      await waitFor(() => second.length === 2, 'the standby to take over');
      expect(first).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
      expect(second).toEqual([8, 9]);
    });

    it('a standby takes over when the active reader’s connection dies without closing', async () => {
      const log = uniqueName('l');
      const group = uniqueName('g');
      const query = '?groupTakeoverMs=100&commitIntervalMs=50';
      const writer = (await open()).log<number>(log);
      const first: number[] = [];
      const second: number[] = [];
      const doomed = await connect(`${AMQP_URL}${query}`, {
        adapters: [rabbitmq({ reconnectDelayMs: 60_000 })],
      });
      await doomed.log<number>(log).read((m) => void first.push(m.payload), { group });
      await (await open(query)).log<number>(log).read((m) => void second.push(m.payload), { group });
      for (let i = 0; i < 3; i++) await writer.append(i);
      await waitFor(() => first.length === 3, 'the active reader');
      // Let the commit land, then drop the connection as a crash would (no close, no final commit).
      await new Promise((resolve) => setTimeout(resolve, 300));
      dropConnection(doomed);
      for (let i = 3; i < 5; i++) await writer.append(i);
      await waitFor(() => second.length >= 2, 'the standby to take over', 15_000);
      expect(second).toEqual([3, 4]);
      await doomed.close();
    });

    it('across dropped connections, appends get their offsets and a reader from latest misses nothing', async () => {
      const log = uniqueName('l');
      const writer = await open();
      const reading = await open();
      const seen: number[] = [];
      await reading.log<number>(log).read((m) => void seen.push(m.payload), { from: 'latest' });
      // The reader loses its connection before its first entry: it must not come back at 'next'.
      dropConnection(reading);
      const { position: first } = await writer.log<number>(log).append(0);
      dropConnection(writer);
      const positions: LogPosition[] = [first];
      for (let i = 1; i < 4; i++) positions.push((await writer.log<number>(log).append(i)).position);
      expect(positions.map((p) => p.offset - first.offset)).toEqual([0, 1, 2, 3]);
      await waitFor(() => seen.length >= 4, 'the reader', 15_000);
      expect(seen).toEqual([0, 1, 2, 3]);
    });

    it('a reader from a timestamp does not disturb the connection (x-stream-offset takes seconds, not a Date)', async () => {
      const bus = await open();
      const states: string[] = [];
      bus.on('state', (state) => states.push(state));
      const log = bus.log<string>(uniqueName('l'));
      await log.append('old');
      const got: string[] = [];
      await log.read((m) => void got.push(m.payload), { from: { timestamp: new Date(Date.now() - 60_000) } });
      await log.append('new');
      await waitFor(() => got.length === 2, 'both entries');
      expect(got).toEqual(['old', 'new']);
      expect(states).toEqual([]);
      expect(bus.health().state).toBe('connected');
    });

    it('a reader with partition positions other than 0 is refused: one stream is one partition', async () => {
      const bus = await open();
      await expect(
        bus
          .log(uniqueName('l'), { partitions: 3 })
          .read(() => undefined, { from: { position: { partition: 2, offset: 0 } } }),
      ).rejects.toThrow(/single partition/);
    });
  });
}
