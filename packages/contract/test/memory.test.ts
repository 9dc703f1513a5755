import { runContractSuite } from '@omnibus/contract';
import { connect, memoryBroker } from '@omnibus/core';

const broker = 'contract';

await runContractSuite({
  name: 'memory',
  connect: (options) => connect(`memory://${broker}`, options),
  restartBroker: () => memoryBroker(broker).restart(),
  // A message as another producer in the process would store it: no id, only bytes and headers.
  inject: async (target, message) => {
    memoryBroker(broker)
      .queue(target.name)
      .enqueue({
        message: {
          id: '',
          body: message.body,
          headers: { ...message.headers },
          contentType: message.contentType ?? 'application/octet-stream',
          key: undefined,
          subject: undefined,
          priority: 0,
          timestamp: Date.now(),
        },
        attempt: 1,
        redelivered: false,
      });
  },
});
