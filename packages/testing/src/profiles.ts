/**
 * The broker profiles of `memory://?profile=<name>`, taken from the adapter packages' own
 * declarations (never copied), so they cannot drift from what the real adapter reports. Importing
 * `@omnibus/testing` registers them with core.
 */
import { KAFKA_CAPABILITIES } from '@omnibus/adapter-kafka';
import { mqttCapabilities } from '@omnibus/adapter-mqtt';
import { rabbitmqCapabilities } from '@omnibus/adapter-rabbitmq';
import { ACTIVEMQ_CAPABILITIES, RABBITMQ_CAPABILITIES } from '@omnibus/adapter-stomp';
import { type MemoryProfile, registerProfile } from '@omnibus/core';

export const BROKER_PROFILES = {
  /** Kafka: no priority, no delay. */
  kafka: { capabilities: KAFKA_CAPABILITIES },
  rabbitmq: { capabilities: rabbitmqCapabilities() },
  /** MQTT 5: no log, priority, delay or consumer groups. */
  mqtt5: { capabilities: mqttCapabilities(5) },
  /** MQTT 3.1.1 as the adapter connects by default: no headers either. */
  mqtt311: { capabilities: mqttCapabilities(4) },
  'stomp-rabbitmq': { capabilities: RABBITMQ_CAPABILITIES },
  /**
   * ActiveMQ Classic over STOMP: priorities 0–9 only, no log. Delay as the adapter declares it
   * before probing the broker's scheduler (`none`).
   */
  'stomp-activemq': { capabilities: ACTIVEMQ_CAPABILITIES },
} as const satisfies Record<string, MemoryProfile>;

export type BrokerProfileName = keyof typeof BROKER_PROFILES;

for (const [name, profile] of Object.entries(BROKER_PROFILES)) registerProfile(name, profile);
