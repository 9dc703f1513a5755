import { runContractSuite } from '@omnibus/contract';
import { connect, memoryBroker } from '@omnibus/core';

const broker = 'contract';

await runContractSuite({
  name: 'memory',
  connect: (options) => connect(`memory://${broker}`, options),
  restartBroker: () => memoryBroker(broker).restart(),
  inject: async (target, message) => memoryBroker(broker).putForeign(target.name, message),
});
