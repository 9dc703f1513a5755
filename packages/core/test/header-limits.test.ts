import { describe, expect, it } from 'vitest';
import { connect, MEMORY_CAPABILITIES, ValidationError } from '../src/index.js';
import { memoryAs } from './helpers.js';

/** The memory adapter with a header limit, as RabbitMQ, MQTT 5 and STOMP have one: core refuses what is over it. */
const MAX = 64;
const small = memoryAs('small', () => ({
  capabilities: { ...MEMORY_CAPABILITIES, limits: { ...MEMORY_CAPABILITIES.limits, maxHeaderBytes: MAX } },
}));

describe('maxHeaderBytes: what the caller gives is measured in UTF-8 bytes, header name included', () => {
  it('takes what fits, to the byte, and refuses what does not, naming it', async () => {
    const bus = await connect('small://', { adapters: [small] });
    try {
      const queue = bus.queue<string>('q');
      const topic = bus.topic<string>('t');
      const refused = (promise: Promise<unknown>) =>
        promise.then(
          () => undefined,
          (error: unknown) => error,
        );
      // x-omnibus-id (12) + 52 = 64 bytes: at the limit.
      await expect(queue.send('a', { id: 'i'.repeat(52) })).resolves.toBeDefined();
      const id = await refused(queue.send('a', { id: 'i'.repeat(53) }));
      expect(id).toBeInstanceOf(ValidationError);
      expect((id as ValidationError).issues).toEqual([
        'id is 65 bytes; memory carries at most 64 per header',
      ]);
      // x-omnibus-key (13) + 25 two-byte characters = 63; one more is 65.
      await expect(queue.send('a', { key: 'é'.repeat(25) })).resolves.toBeDefined();
      expect(await refused(queue.send('a', { key: 'é'.repeat(26) }))).toBeInstanceOf(ValidationError);
      // x-omnibus-subject (17) + 47 = 64.
      await expect(topic.publish('a', { subject: 's'.repeat(47) })).resolves.toBeDefined();
      const subject = await refused(topic.publish('a', { subject: 's'.repeat(48) }));
      expect((subject as ValidationError).issues).toEqual([
        'subject is 65 bytes; memory carries at most 64 per header',
      ]);
      // A short subject: nothing to measure.
      await expect(topic.publish('a', { subject: 'orders.eu' })).resolves.toBeDefined();
    } finally {
      await bus.close();
    }
  });
});
