/**
 * The contract suite on the in-memory broker under every broker profile. The plan it runs (which
 * tests apply, which prove an `UnsupportedCapabilityError`) must be the real adapter's plan for the
 * capabilities that adapter declares, and every test must pass: the profile makes memory behave
 * like that broker, not merely report its flags.
 */
import { type ContractSuiteOptions, planContractSuite, runContractSuite } from '@omnibus/contract';
import { connect, memoryBroker } from '@omnibus/core';
import { BROKER_PROFILES, type BrokerProfileName } from '@omnibus/testing';
import { describe, expect, it } from 'vitest';

for (const profile of Object.keys(BROKER_PROFILES) as BrokerProfileName[]) {
  const broker = `contract-profile-${profile}`;
  const options: Pick<ContractSuiteOptions, 'restartBroker' | 'inject'> = {
    restartBroker: () => memoryBroker(broker).restart(),
    inject: async (target, message) => memoryBroker(broker).putForeign(target.name, message),
  };
  const plan = await runContractSuite({
    name: `memory?profile=${profile}`,
    connect: (connectOptions) => connect(`memory://${broker}?profile=${profile}`, connectOptions),
    ...options,
  });

  describe(`profile ${profile}: verdicts`, () => {
    it('reports exactly the capabilities the adapter package declares', () => {
      expect(plan.capabilities).toEqual(BROKER_PROFILES[profile].capabilities);
    });

    it("runs the real adapter's plan: the same tests run, the same ones do not apply", () => {
      const real = planContractSuite(BROKER_PROFILES[profile].capabilities, options);
      expect(plan.run).toEqual(real.run);
      expect([...plan.notRun]).toEqual([...real.notRun]);
      // Not the default memory plan: every profile but RabbitMQ's lacks something.
      if (profile !== 'rabbitmq') expect(plan.notRun.size).toBeGreaterThan(0);
    });
  });
}
