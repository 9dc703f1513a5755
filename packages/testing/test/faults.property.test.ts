/**
 * Under any mix of faults, no message the broker confirmed is lost: every queue message is handled
 * (acked) at least once, whatever was duplicated, redelivered, reordered, delayed or refused.
 */
import { createTestBus, type FaultRates, spy } from '@omnibus/testing';
import fc from 'fast-check';
import { describe, it } from 'vitest';

const rates: fc.Arbitrary<FaultRates> = fc.record(
  {
    duplicate: fc.double({ min: 0, max: 0.5, noNaN: true }),
    lostAck: fc.double({ min: 0, max: 0.4, noNaN: true }),
    reorder: fc.double({ min: 0, max: 1, noNaN: true }),
    delayMs: fc.tuple(fc.nat(3), fc.nat(3)).map(([a, b]) => [Math.min(a, b), Math.max(a, b)] as const),
    slowAckMs: fc.nat(2),
  },
  { requiredKeys: [] },
);

const scenario = fc.record({
  seed: fc.nat(),
  rates,
  failSends: fc.nat(4),
  disconnectAfter: fc.option(fc.nat(15), { nil: undefined }),
  messages: fc.array(
    fc.record({ key: fc.option(fc.constantFrom('a', 'b', 'c'), { nil: undefined }), fails: fc.boolean() }),
    {
      minLength: 1,
      maxLength: 25,
    },
  ),
  concurrency: fc.integer({ min: 1, max: 4 }),
});

describe('faults never lose a confirmed message', () => {
  it('every confirmed queue message is handled at least once', { timeout: 120_000 }, async () => {
    await fc.assert(
      fc.asyncProperty(scenario, async (s) => {
        await using bus = await createTestBus({
          seed: s.seed,
          faults: { ...s.rates, failSends: s.failSends },
        });
        using watch = spy(bus);
        const queue = bus.queue<{ n: number; fails: boolean }>('work', { maxAttempts: 50 });
        await queue.consume(
          (m) => {
            // A handler that fails its first attempt of some messages: retries go through the faults too.
            if (m.payload.fails && m.attempt === 1) throw new Error('first attempt fails');
          },
          { concurrency: s.concurrency },
        );
        const confirmed: string[] = [];
        const outage = [] as Promise<void>[];
        for (const [n, message] of s.messages.entries()) {
          if (n === s.disconnectAfter) outage.push(bus.faults.disconnect(5));
          const options = message.key === undefined ? {} : { key: message.key };
          const { id } = await queue.send({ n, fails: message.fails }, options);
          confirmed.push(id);
        }
        await Promise.all(outage);
        for (const id of confirmed) await watch.waitFor({ id, outcome: 'acked' }, { timeoutMs: 5000 });
        // And nothing went to the dead-letter queue.
        if (watch.handled.some((h) => h.outcome === 'deadLettered'))
          throw new Error('a message was dead-lettered');
      }),
      { numRuns: 40 },
    );
  });
});
