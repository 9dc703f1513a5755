import { ClosedError, type ConnectionState, delay } from '@omnibus/core';
import { expect } from 'vitest';
import { defineTests, expectOnlyMarker, gate, recorder, rejectsWith, requires, waitFor } from '../harness.js';

export const lifecycleTests = defineTests([
  {
    id: 'lifecycle: close() is idempotent',
    async run(t) {
      const bus = await t.connect();
      await Promise.all([bus.close(), bus.close()]);
      await bus.close();
      expect(bus.closed).toBe(true);
      expect(bus.health().state).toBe('closed');
    },
  },
  {
    id: 'lifecycle: a closed bus rejects new work with ClosedError',
    ...requires('queue'),
    async run(t) {
      const bus = await t.connect();
      const queue = bus.queue(t.name('q'));
      await bus.close();
      await rejectsWith(() => queue.send('late'), ClosedError, 'OMNIBUS_CLOSED');
      await rejectsWith(() => queue.consume(() => undefined), ClosedError, 'OMNIBUS_CLOSED');
      await rejectsWith(async () => bus.queue(t.name('q')), ClosedError, 'OMNIBUS_CLOSED');
    },
  },
  {
    id: 'lifecycle: bus.close() waits for running handlers, and their messages are not redelivered',
    ...requires('queue'),
    async run(t) {
      const name = t.name('q');
      const bus = await t.connect();
      const started = gate();
      let finished = false;
      await bus.queue(name).consume(async () => {
        started.open();
        await delay(100);
        finished = true;
      });
      await bus.queue(name).send('in flight');
      await started.promise;
      await bus.close();
      expect(finished).toBe(true);
      const other = await t.connect();
      await expectOnlyMarker(other, name, t.timeoutMs);
    },
  },
  {
    id: 'lifecycle: consumer.close() is idempotent and Symbol.asyncDispose closes too',
    ...requires('queue'),
    async run(t) {
      const bus = await t.connect();
      const consumer = await bus.queue(t.name('q')).consume(() => undefined);
      await Promise.all([consumer.close(), consumer.close()]);
      expect(consumer.closed).toBe(true);
      const second = await bus.queue(t.name('q')).consume(() => undefined);
      await second[Symbol.asyncDispose]();
      expect(second.closed).toBe(true);
      await bus[Symbol.asyncDispose]();
      expect(bus.closed).toBe(true);
    },
  },
  {
    id: 'lifecycle: health() shows the connection and each consumer with its last delivery and ack',
    ...requires('queue'),
    async run(t) {
      const bus = await t.connect();
      const name = t.name('q');
      expect(bus.health().state).toBe('connected');
      const got = recorder();
      await bus.queue(name).consume(got.handler);
      const before = bus.health().consumers;
      expect(before).toHaveLength(1);
      expect(before[0]).toMatchObject({ kind: 'queue', destination: name, lastDeliveryAt: undefined });
      await bus.queue(name).send('x');
      await got.waitFor(1, t.timeoutMs);
      await waitFor(() => bus.health().consumers[0]?.lastAckAt !== undefined, 'the ack', t.timeoutMs);
      expect(bus.health().consumers[0]!.lastDeliveryAt).toBeInstanceOf(Date);
    },
  },
  {
    id: 'lifecycle: after a broker restart, consumers resume and confirmed messages are delivered',
    ...requires('queue'),
    needsRestart: true,
    async run(t) {
      const name = t.name('q');
      const bus = await t.connect();
      const queue = bus.queue<number>(name);
      const seen = new Set<number>();
      await queue.consume((m) => void seen.add(m.payload));
      for (let i = 0; i < 10; i++) await queue.send(i);
      await t.restartBroker!();
      for (let i = 10; i < 20; i++) await queue.send(i);
      await waitFor(() => seen.size === 20, `20 distinct messages (got ${seen.size})`, t.timeoutMs * 6);
    },
  },
  {
    id: 'lifecycle: a send during a broker restart waits and is delivered',
    ...requires('queue'),
    needsRestart: true,
    async run(t) {
      const name = t.name('q');
      const bus = await t.connect();
      const states: ConnectionState[] = [];
      bus.on('state', (state) => states.push(state));
      const got = recorder<string>();
      await bus.queue<string>(name).consume(got.handler);
      const restarting = t.restartBroker!();
      await waitFor(
        () => states.includes('reconnecting') || bus.health().state !== 'connected',
        'the outage',
        t.timeoutMs * 6,
      ).catch(() => undefined);
      const sent = bus.queue<string>(name).send('during');
      await restarting;
      await sent;
      await got.waitFor(1, t.timeoutMs * 6);
      expect(got.payloads()).toContain('during');
      await waitFor(() => bus.health().state === 'connected', 'reconnection', t.timeoutMs * 6);
      expect(states).toContain('reconnecting');
      expect(states.at(-1)).toBe('connected');
    },
  },
]);
