/**
 * The whole contract suite on the loopback adapter, found the way an application finds any adapter:
 * by the `loopback` scheme in an installed package's package.json — no `adapters` option, no core edit.
 */
import { randomBytes } from 'node:crypto';
import { runContractSuite } from '@omnibus/contract';
import { connect } from '@omnibus/core';
import { loopbackBroker } from '../src/index.js';

const broker = `contract-${randomBytes(4).toString('hex')}`;

await runContractSuite({
  name: 'loopback',
  connect: (options) => connect(`loopback://${broker}`, options),
  restartBroker: () => loopbackBroker(broker).restart(),
  // A foreign message: raw bytes and headers put on the queue by the broker's own client.
  inject: async (target, message) =>
    loopbackBroker(broker)
      .queue(target.name)
      .put({ body: message.body, headers: { ...message.headers } }),
});
