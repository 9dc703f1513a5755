import type { StompOptions } from './options.js';
import { stomp } from './stomp-adapter.js';

export type { ProfileChoice, StompOptions } from './options.js';
export {
  ACTIVEMQ_CAPABILITIES,
  type BrokerProfile,
  GENERIC_CAPABILITIES,
  PROFILES,
  type ProfileName,
  profileFor,
  RABBITMQ_CAPABILITIES,
} from './profiles.js';
export { stomp } from './stomp-adapter.js';
export default stomp;

declare module '@omnibus/core' {
  interface AdapterConfigs {
    stomp: StompOptions;
  }
}
