/**
 * omnibus-adapter-loopback — a third-party adapter on an in-process broker of its own.
 * `connect('loopback://name')` finds it by the `omnibus` field of its package.json.
 */
import { loopback } from './loopback-adapter.js';

export {
  type Frame,
  LoopbackBroker,
  loopbackBroker,
  Queue,
  type QueueConsumer,
  type Session,
} from './broker.js';
export { LOOPBACK_CAPABILITIES, loopback } from './loopback-adapter.js';

declare module '@omnibus/core' {
  interface AdapterConfigs {
    /** `{ adapter: 'loopback', url?: 'loopback://name' }`: it takes no options. */
    loopback: object;
  }
}

export default loopback;
