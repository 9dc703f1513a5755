import {
  type Capabilities,
  FEATURE_NEEDS,
  FEATURES,
  type Feature,
  missingCapabilities,
  UnsupportedCapabilityError,
} from '@omnibus/core';
import { expect } from 'vitest';
import { type ContractContext, type ContractTest, defineTests, rejectsWith } from '../harness.js';

/** Uses one feature the way an application would; used to prove a `none` feature throws. */
const USE: Record<Feature, (t: ContractContext) => Promise<unknown>> = {
  queue: async (t) => (await t.connect()).queue(t.name('q')),
  topic: async (t) => (await t.connect()).topic(t.name('t')),
  log: async (t) => (await t.connect()).log(t.name('l')),
  priority: async (t) => (await t.connect()).queue(t.name('q')).send('x', { priority: 1 }),
  replay: async (t) => (await t.connect()).log(t.name('l')).read(() => undefined, { from: 'earliest' }),
  routing: async (t) => (await t.connect()).topic(t.name('t')).subscribe('a.*', () => undefined),
  deadLetter: async (t) => (await t.connect()).queue(t.name('q'), { deadLetter: t.name('dlq') }),
  delay: async (t) => (await t.connect()).queue(t.name('q')).send('x', { delayMs: 1000 }),
  headers: async (t) => (await t.connect()).queue(t.name('q')).send('x', { headers: { a: 'b' } }),
  durableSubscriptions: async (t) =>
    (await t.connect()).topic(t.name('t')).subscribe('#', () => undefined, { durable: t.name('d') }),
  consumerGroups: async (t) =>
    (await t.connect()).log(t.name('l')).read(() => undefined, { group: t.name('g'), from: 'latest' }),
  depth: async (t) => (await t.connect()).queue(t.name('q')).depth(),
  purge: async (t) => (await t.connect()).queue(t.name('q')).purge(),
  browse: async (t) => (await t.connect()).deadLetters({ queue: t.name('q') }).peek(1),
  redrive: async (t) => (await t.connect()).deadLetters({ queue: t.name('q') }).redrive(),
  redriveSubscription: async (t) =>
    (await t.connect()).deadLetters({ topic: t.name('t'), subscription: t.name('d') }).redrive(),
  deleteSubscription: async (t) => (await t.connect()).topic(t.name('t')).deleteSubscription(t.name('d')),
  resetGroup: async (t) => (await t.connect()).log(t.name('l')).resetGroup(t.name('g'), 'earliest'),
  lag: async (t) => (await t.connect()).log(t.name('l')).lag(t.name('g')),
};

/** One test per feature: when the adapter says `none`, using it throws `UnsupportedCapabilityError`. */
type DeniedId = `capabilities: using ${Feature} when it is none throws UnsupportedCapabilityError`;
const denied = FEATURES.map((feature): ContractTest & { readonly id: DeniedId } => ({
  id: `capabilities: using ${feature} when it is none throws UnsupportedCapabilityError`,
  when: (c: Capabilities) =>
    c[feature] === 'none' && (FEATURE_NEEDS[feature] === undefined || c[FEATURE_NEEDS[feature]] !== 'none'),
  whenText: `${feature} is supported`,
  async run(t: ContractContext) {
    const error = await rejectsWith(() => USE[feature](t), UnsupportedCapabilityError, 'OMNIBUS_UNSUPPORTED');
    expect((error as UnsupportedCapabilityError).missing.map((m) => m.feature)).toContain(feature);
    expect(error.message).toContain(feature);
  },
}));

export const capabilityTests = defineTests([
  {
    id: 'capabilities: every flag has a valid value',
    async run(t) {
      const bus = await t.connect();
      for (const feature of FEATURES)
        expect(['native', 'emulated', 'none']).toContain(bus.capabilities[feature]);
      expect(['key', 'destination', 'none']).toContain(bus.capabilities.ordering);
      const { maxPriority, maxMessageBytes } = bus.capabilities.limits;
      if (maxPriority !== undefined) expect(Number.isInteger(maxPriority) && maxPriority > 0).toBe(true);
      if (maxMessageBytes !== undefined) expect(maxMessageBytes).toBeGreaterThan(1024);
      expect(bus.capabilities).toEqual(t.capabilities);
    },
  },
  {
    id: 'capabilities: requires with what the broker has connects',
    async run(t) {
      const have = FEATURES.filter((f) => t.capabilities[f] !== 'none');
      const bus = await t.connect({ requires: have });
      expect(bus.closed).toBe(false);
      const exact = Object.fromEntries(have.map((f) => [f, t.capabilities[f]]));
      await t.connect({ requires: exact });
    },
  },
  {
    id: 'capabilities: requires with what the broker lacks fails at connect, listing every missing feature',
    when: (c) => FEATURES.some((f) => c[f] !== 'native'),
    whenText: 'every feature is native',
    async run(t) {
      const requires = Object.fromEntries(FEATURES.map((f) => [f, 'native' as const]));
      const expected = missingCapabilities(t.capabilities, requires).map((m) => m.feature);
      const error = await rejectsWith(
        () => t.connect({ requires }),
        UnsupportedCapabilityError,
        'OMNIBUS_UNSUPPORTED',
      );
      expect((error as UnsupportedCapabilityError).missing.map((m) => m.feature)).toEqual(expected);
      for (const feature of expected) expect(error.message).toContain(feature);
    },
  },
  ...denied,
]);
