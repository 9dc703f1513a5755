/**
 * @omnibus/testing — test an Omnibus application without a broker: `memory://?profile=<broker>`
 * with the real adapter's capabilities, spies that await a message's outcome, and seeded fault
 * injection that never loses a confirmed message. Importing it registers the broker profiles.
 *
 * @example
 * await using bus = await createTestBus({ profile: 'kafka', faults: { duplicate: 0.2 }, seed: 7 });
 * using watch = spy(bus);
 * const { id } = await bus.queue('orders').send(order);
 * await watch.waitFor({ id, outcome: 'acked' });
 */
export type {
  FaultName,
  FaultOptions,
  FaultRates,
  Faults,
  InjectedFault,
} from './faults.js';
export { BROKER_PROFILES, type BrokerProfileName } from './profiles.js';
export { type Random, seededRandom } from './random.js';
export {
  createSpy,
  type HandledRecord,
  type SentRecord,
  type Spy,
  type SpyOutcome,
  type SpyQuery,
  type SpyRecord,
  type SpyResult,
  SpyTimeoutError,
  spy,
  type WaitOptions,
} from './spy.js';
export { createTestBus, type TestBus, type TestBusOptions } from './test-bus.js';
