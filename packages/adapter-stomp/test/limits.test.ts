/**
 * Header lines: RabbitMQ's STOMP plugin accepts a SEND with a header line over 65,536 bytes and then
 * fails every delivery of it ("maximum line length exceeded"), breaking the queue's consumers;
 * ActiveMQ refuses lines over 10,240 bytes. Core refuses a header over `maxHeaderBytes` before it
 * is sent, and a header at the limit round-trips even when every character is escaped on the wire.
 */
import { waitFor } from '@omnibus/contract';
import { type Bus, connect, ValidationError } from '@omnibus/core';
import { afterEach, describe, expect, it } from 'vitest';
import { stomp } from '../src/index.js';
import { ACTIVEMQ_STOMP_URL, brokerOrSkip, RABBITMQ_STOMP_URL } from './brokers.js';

const targets = [
  { name: 'rabbitmq', url: RABBITMQ_STOMP_URL },
  { name: 'activemq', url: ACTIVEMQ_STOMP_URL },
] as const;

const unique = (suffix: string) => `lim-${Math.random().toString(36).slice(2, 10)}-${suffix}`;

for (const target of targets) {
  const available = await brokerOrSkip(`limits on ${target.name}`, target.url);
  describe.skipIf(!available)(`stomp → ${target.name}: header limits`, () => {
    const open: Bus[] = [];
    afterEach(async () => {
      await Promise.allSettled(open.splice(0).map((b) => b.close()));
    });

    it('a 70,000-byte header is refused before it is sent; the queue keeps working', async () => {
      const bus = await connect(target.url, { adapters: [stomp()] });
      open.push(bus);
      const queue = bus.queue<string>(unique('big'));
      const got: string[] = [];
      await queue.consume((m) => void got.push(m.payload));
      const refused = await queue.send('big', { headers: { big: 'x'.repeat(70_000) } }).then(
        () => undefined,
        (error: unknown) => error,
      );
      expect(refused).toBeInstanceOf(ValidationError);
      expect((refused as Error).message).toMatch(/maxHeaderBytes/);
      await queue.send('next');
      await waitFor(() => got.length === 1, 'the next message');
      expect(got).toEqual(['next']);
      expect(bus.health().state).toBe('connected');
    });

    it('a header at the limit arrives whole, even when every character is escaped on the wire', async () => {
      const bus = await connect(target.url, { adapters: [stomp()] });
      open.push(bus);
      const max = bus.capabilities.limits.maxHeaderBytes!;
      expect(max).toBeGreaterThan(1000);
      const queue = bus.queue<string>(unique('edge'));
      const got: Record<string, string>[] = [];
      await queue.consume((m) => void got.push({ ...m.headers }));
      // `priority` is escaped too (it travels as x-omnibus-h-priority): the longest line there is.
      const headers = { priority: ':\n\r\\'.repeat((max - 'priority'.length) / 4) };
      await queue.send('edge', { headers });
      await waitFor(() => got.length === 1, 'the message at the limit');
      expect(got[0]).toEqual(headers);
    });
  });
}
