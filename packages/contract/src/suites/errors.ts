import { OmnibusError, ValidationError } from '@omnibus/core';
import { expect } from 'vitest';
import { defineTests, expectOnlyMarker, rejectsWith, requires } from '../harness.js';
import { numberSchema } from './queue.js';

const invalid = (fn: () => unknown, contains?: RegExp) =>
  rejectsWith(fn, ValidationError, 'OMNIBUS_VALIDATION', contains);

export const errorTests = defineTests([
  {
    id: 'errors: an empty destination name is rejected',
    ...requires('queue'),
    async run(t) {
      const bus = await t.connect();
      await invalid(async () => bus.queue(''), /non-empty/);
    },
  },
  {
    id: 'errors: an over-long destination name is rejected',
    ...requires('queue'),
    async run(t) {
      const bus = await t.connect();
      await invalid(async () => bus.queue('q'.repeat(201)), /limit is 200/);
    },
  },
  {
    id: 'errors: a destination name with characters brokers reject is rejected',
    ...requires('queue'),
    async run(t) {
      const bus = await t.connect();
      for (const name of ['a/b', 'a b', 'a#b', 'a*b', '.hidden', 'x\u0000y', 'ünïcode']) {
        await invalid(async () => bus.queue(name), /not portable/);
      }
    },
  },
  {
    id: 'errors: a wildcard in a published subject is rejected',
    ...requires('topic'),
    async run(t) {
      const bus = await t.connect();
      const topic = bus.topic(t.name('t'));
      await invalid(() => topic.publish('x', { subject: 'orders.#' }), /wildcard/);
      await invalid(() => topic.publish('x', { subject: 'orders.*.created' }), /wildcard/);
      await invalid(() => topic.publish('x', { subject: 'orders..created' }), /invalid word/);
      await invalid(() => topic.publish('x', { subject: 'orders/eu' }), /invalid word/);
    },
  },
  {
    id: 'errors: a malformed subscription pattern is rejected',
    ...requires('topic'),
    async run(t) {
      const bus = await t.connect();
      const topic = bus.topic(t.name('t'));
      for (const pattern of ['', 'a..b', 'a.b*', 'a.#b', 'a/b']) {
        await invalid(() => topic.subscribe(pattern, () => undefined));
      }
    },
  },
  {
    id: 'errors: a payload that fails its schema is rejected before it is sent',
    ...requires('queue'),
    async run(t) {
      const bus = await t.connect();
      const name = t.name('q');
      const error = await invalid(() =>
        bus.queue(name, { schema: numberSchema() }).send('nope' as unknown as number),
      );
      expect((error as ValidationError).issues).toEqual(['expected a number, got string']);
      await expectOnlyMarker(bus, name, t.timeoutMs);
    },
  },
  {
    id: 'errors: a payload that cannot be encoded is rejected',
    ...requires('queue'),
    async run(t) {
      const bus = await t.connect();
      const queue = bus.queue<unknown>(t.name('q'));
      const circular: Record<string, unknown> = {};
      circular.self = circular;
      await invalid(() => queue.send(circular), /cannot be encoded as json/);
      await invalid(() => queue.send(10n), /cannot be encoded/);
      await invalid(() => queue.send(undefined), /cannot be encoded/);
      await invalid(
        () => bus.queue<unknown>(t.name('q'), { codec: 'text' }).send(42),
        /cannot be encoded as text/,
      );
      await invalid(
        () => bus.queue<unknown>(t.name('q'), { codec: 'bytes' }).send('str'),
        /cannot be encoded as bytes/,
      );
    },
  },
  {
    id: 'errors: invalid consumer options are rejected',
    ...requires('queue'),
    async run(t) {
      const bus = await t.connect();
      const queue = bus.queue(t.name('q'));
      for (const options of [
        { concurrency: 0 },
        { concurrency: -1 },
        { concurrency: Number.NaN },
        { concurrency: 1.5 },
        { prefetch: 0 },
        { handlerTimeoutMs: -5 },
      ]) {
        await invalid(() => queue.consume(() => undefined, options));
      }
      await invalid(
        () => queue.consume('not a function' as unknown as () => void),
        /handler must be a function/,
      );
      expect(bus.health().consumers).toHaveLength(0);
    },
  },
  {
    id: 'errors: invalid headers are rejected',
    ...requires('queue', 'headers'),
    async run(t) {
      const bus = await t.connect();
      const queue = bus.queue(t.name('q'));
      await invalid(() => queue.send('x', { headers: { n: 5 as unknown as string } }), /must be a string/);
      await invalid(() => queue.send('x', { headers: { 'x-omnibus-attempt': '9' } }), /reserved prefix/);
      await invalid(() => queue.send('x', { headers: { 'bad:name': 'v' } }), /contains ":"/);
    },
  },
  {
    id: 'errors: invalid send options are rejected',
    ...requires('queue'),
    async run(t) {
      const bus = await t.connect();
      const queue = bus.queue(t.name('q'));
      await invalid(() => queue.send('x', { delayMs: -1 }), /delayMs/);
      await invalid(() => queue.send('x', { delayMs: Number.NaN }), /delayMs/);
      await invalid(() => queue.send('x', { id: '' }), /id must be/);
      await invalid(() => queue.send('x', { key: 'k'.repeat(2000) }), /key must be/);
    },
  },
  {
    id: 'errors: a priority outside the range is rejected',
    ...requires('queue', 'priority'),
    async run(t) {
      const bus = await t.connect();
      const queue = bus.queue(t.name('q'), { maxPriority: 5 });
      await invalid(() => queue.send('x', { priority: 6 }), /priority must be an integer from 0 to 5/);
      await invalid(() => queue.send('x', { priority: -1 }), /priority/);
      await invalid(() => queue.send('x', { priority: 2.5 }), /priority/);
      const max = t.capabilities.limits.maxPriority ?? 9;
      await invalid(async () => bus.queue(t.name('q'), { maxPriority: max + 1 }), /maxPriority/);
    },
  },
  {
    id: 'errors: invalid retry policies are rejected',
    ...requires('queue'),
    async run(t) {
      const bus = await t.connect();
      await invalid(async () => bus.queue(t.name('q'), { maxAttempts: 0 }), /maxAttempts/);
      await invalid(async () => bus.queue(t.name('q'), { retryDelayMs: -10 }), /retryDelayMs/);
      await invalid(async () => bus.queue(t.name('q'), { deadLetter: 'bad name' }), /dead-letter queue name/);
    },
  },
  {
    id: 'errors: an invalid read position is rejected',
    ...requires('log', 'replay'),
    async run(t) {
      const bus = await t.connect();
      const log = bus.log(t.name('l'));
      const read = (from: unknown) => log.read(() => undefined, { from: from as 'earliest' });
      await invalid(() => read('yesterday'), /from must be/);
      await invalid(() => read({ position: { partition: -1, offset: 0 } }), /non-negative/);
      await invalid(() => read({ timestamp: Number.NaN }), /timestamp/);
      await invalid(async () => bus.log(t.name('l'), { partitions: 0 }), /partitions/);
    },
  },
  {
    id: 'errors: every error is an OmnibusError with a stable code and the adapter name',
    ...requires('queue'),
    async run(t) {
      const bus = await t.connect();
      const error = await invalid(async () => bus.queue(''));
      expect(error).toBeInstanceOf(OmnibusError);
      expect(error.message.startsWith('[omnibus]')).toBe(true);
      const closed = await t.connect();
      await closed.close();
      const closedError = await rejectsWith(
        async () => closed.topic(t.name('t')),
        OmnibusError,
        'OMNIBUS_CLOSED',
      );
      expect((closedError as OmnibusError).adapter).toBe(bus.adapter);
    },
  },
]);
