import { KAFKA_CAPABILITIES } from '@omnibus/adapter-kafka';
import { mqttCapabilities } from '@omnibus/adapter-mqtt';
import { rabbitmqCapabilities } from '@omnibus/adapter-rabbitmq';
import { ACTIVEMQ_CAPABILITIES, RABBITMQ_CAPABILITIES } from '@omnibus/adapter-stomp';
import { type Capabilities, MEMORY_CAPABILITIES } from '@omnibus/core';

/** The columns of the README's capability table: one per adapter and broker profile. */
export async function capabilityColumns(): Promise<Record<string, Capabilities>> {
  return {
    memory: MEMORY_CAPABILITIES,
    rabbitmq: rabbitmqCapabilities(),
    kafka: KAFKA_CAPABILITIES,
    'mqtt 5': mqttCapabilities(5),
    'mqtt 3.1.1': mqttCapabilities(4),
    'stomp → RabbitMQ': RABBITMQ_CAPABILITIES,
    // ActiveMQ's delay is native when its scheduler is on (the adapter probes it at connect).
    'stomp → ActiveMQ': { ...ACTIVEMQ_CAPABILITIES, delay: 'native' },
  };
}
