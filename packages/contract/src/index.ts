/**
 * @omnibus/contract — the suite every adapter runs against its real broker. For each capability,
 * the behaviour tests run when the adapter claims it (`native` or `emulated`), and a test proves
 * that using it throws `UnsupportedCapabilityError` when it says `none`. Flags cannot lie.
 *
 * @example
 * // test/contract.test.ts of an adapter
 * await runContractSuite({ name: 'rabbitmq', connect: (o) => connect(process.env.AMQP_URL!, o) });
 */
import type { Bus, Capabilities, ConnectOptions } from '@omnibus/core';
import { describe, it } from 'vitest';
import { type ContractContext, type ContractTest, type Inject, uniqueName } from './harness.js';
import { batchTests } from './suites/batch.js';
import { capabilityTests } from './suites/capabilities.js';
import { errorTests } from './suites/errors.js';
import { lifecycleTests } from './suites/lifecycle.js';
import { logTests } from './suites/log.js';
import { operationsTests } from './suites/operations.js';
import { queueTests } from './suites/queue.js';
import { semanticsTests } from './suites/semantics.js';
import { topicTests } from './suites/topic.js';

const AREAS = {
  queue: queueTests,
  topic: topicTests,
  log: logTests,
  capabilities: capabilityTests,
  lifecycle: lifecycleTests,
  errors: errorTests,
  semantics: semanticsTests,
  operations: operationsTests,
  batch: batchTests,
} as const;

/** The name of every contract test; `skip` keys are checked against it. */
export type ContractTestId = (typeof AREAS)[keyof typeof AREAS][number]['id'];

export interface ContractSuiteOptions {
  /** Shown in test names, e.g. `rabbitmq` or `stomp → activemq`. */
  readonly name: string;
  /** Opens a fresh connection to the broker under test; options come from the test (e.g. `requires`). */
  readonly connect: (options?: ConnectOptions) => Promise<Bus>;
  /** Restarts the broker; reconnection tests run only when given. */
  readonly restartBroker?: () => Promise<void>;
  /**
   * Puts raw bytes on a queue with the broker's own client, as a non-Omnibus producer would (no
   * Omnibus envelope, no id), where the adapter consumes that queue from. The foreign-message tests
   * run only when given; they attach their consumer before calling it.
   */
  readonly inject?: Inject;
  /** Tests to skip, each with the reason; every skip is printed. */
  readonly skip?: Partial<Record<ContractTestId, string>>;
  /** How long a test waits for a message before failing. @default 10000 */
  readonly timeoutMs?: number;
  /** Upper bound for one test. @default 60000 */
  readonly testTimeoutMs?: number;
}

export interface ContractPlan {
  readonly capabilities: Capabilities;
  /** Test id → why it does not run (not applicable, skipped, or no restartBroker). */
  readonly notRun: ReadonlyMap<string, string>;
  readonly run: readonly string[];
}

/** Every contract test, by area: for tools that report on an adapter (and for counting). */
export function contractTests(): Readonly<Record<keyof typeof AREAS, readonly ContractTest[]>> {
  return AREAS;
}

/** Which tests apply to these capabilities, and why the others do not. */
export function planContractSuite(
  capabilities: Capabilities,
  options: Pick<ContractSuiteOptions, 'restartBroker' | 'skip' | 'inject'>,
): ContractPlan {
  const notRun = new Map<string, string>();
  const run: string[] = [];
  const skip = (options.skip ?? {}) as Record<string, string | undefined>;
  for (const tests of Object.values(AREAS) as readonly (readonly ContractTest[])[]) {
    for (const test of tests) {
      const reason =
        skip[test.id] !== undefined
          ? `skipped: ${skip[test.id]}`
          : test.when !== undefined && !test.when(capabilities)
            ? `not applicable: ${test.whenText ?? 'capability missing'}`
            : test.needsRestart === true && options.restartBroker === undefined
              ? 'skipped: no restartBroker given'
              : test.needsInject === true && options.inject === undefined
                ? 'skipped: no inject given'
                : undefined;
      if (reason === undefined) run.push(test.id);
      else notRun.set(test.id, reason);
    }
  }
  return { capabilities, notRun, run };
}

/**
 * Registers the contract suite with vitest. Await it at the top level of a test file: it connects
 * once to learn the adapter's capabilities, then registers each area's tests.
 */
export async function runContractSuite(options: ContractSuiteOptions): Promise<ContractPlan> {
  const probe = await options.connect();
  const capabilities = probe.capabilities;
  await probe.close();

  const unknown = Object.keys(options.skip ?? {}).filter(
    (id) =>
      !Object.values(AREAS).some((tests) => (tests as readonly ContractTest[]).some((t) => t.id === id)),
  );
  if (unknown.length > 0)
    throw new Error(`[omnibus contract] unknown test ids in skip: ${unknown.join('; ')}`);

  const plan = planContractSuite(capabilities, options);
  for (const [id, reason] of plan.notRun) {
    if (reason.startsWith('skipped')) console.warn(`[omnibus contract] ${options.name}: "${id}" ${reason}`);
  }
  const notApplicable = [...plan.notRun.values()].filter((r) => r.startsWith('not applicable')).length;
  console.info(
    `[omnibus contract] ${options.name}: ${plan.run.length} tests run, ${notApplicable} not applicable to its capabilities, ${
      plan.notRun.size - notApplicable
    } skipped`,
  );

  const timeoutMs = options.timeoutMs ?? 10_000;
  describe(`contract: ${options.name}`, () => {
    for (const [area, tests] of Object.entries(AREAS) as [string, readonly ContractTest[]][]) {
      // vitest fails an empty suite: an area none of whose tests apply (e.g. log on a broker without logs) is left out.
      if (tests.every((test) => plan.notRun.get(test.id)?.startsWith('not applicable'))) continue;
      describe(area, () => {
        for (const test of tests) {
          const reason = plan.notRun.get(test.id);
          if (reason?.startsWith('not applicable')) continue;
          if (reason !== undefined) {
            it.skip(`${test.id} (${reason})`, () => undefined);
            continue;
          }
          it(test.id, { timeout: options.testTimeoutMs ?? 60_000 }, async () => {
            const buses: Bus[] = [];
            const context: ContractContext = {
              capabilities,
              restartBroker: options.restartBroker,
              inject: options.inject,
              timeoutMs,
              name: uniqueName,
              async connect(connectOptions) {
                const bus = await options.connect(connectOptions);
                buses.push(bus);
                return bus;
              },
            };
            try {
              await test.run(context);
            } finally {
              await Promise.allSettled(buses.map((bus) => bus.close()));
            }
          });
        }
      });
    }
  });
  return plan;
}

export {
  type ContractContext,
  type ContractTest,
  type ForeignMessage,
  gate,
  type Inject,
  type InjectTarget,
  recorder,
  rejectsWith,
  thrownBy,
  uniqueName,
  waitFor,
} from './harness.js';
