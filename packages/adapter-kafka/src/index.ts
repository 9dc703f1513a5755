/**
 * @omnibus/adapter-kafka — Omnibus on Apache Kafka with kafkajs: log and topic native, queue,
 * routing and dead letters emulated. `connect('kafka://localhost:9092')` loads it by scheme.
 */
import { kafka } from './kafka-adapter.js';
import type { KafkaOptions } from './options.js';

export { KAFKA_CAPABILITIES, kafka } from './kafka-adapter.js';
export type { KafkaOptions, SaslMechanism } from './options.js';

declare module '@omnibus/core' {
  interface AdapterConfigs {
    kafka: KafkaOptions;
  }
}

export default kafka;
