import { mqtt } from './mqtt-adapter.js';

export { mqtt, mqttCapabilities } from './mqtt-adapter.js';
export type { MqttOptions } from './options.js';
export { subjectOf, topicFilter, topicName } from './wire.js';
export default mqtt;
