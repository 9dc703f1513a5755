export { ATTR } from './attributes.js';
export {
  type InstrumentOmnibusOptions,
  instrumentOmnibus,
  type OmnibusInstrumentation,
} from './instrument.js';
export { METRICS } from './metrics.js';
