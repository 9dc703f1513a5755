/**
 * The checks of memory.test.ts on each real broker whose adapter is installed, one describe per
 * set-up: skipped with the reason when the broker is not reachable, failed under
 * OMNIBUS_REQUIRE_BROKERS=1. MQTT 3.1.1 has no headers: its checks prove the fallback instead.
 */

import { kafka } from '@omnibus/adapter-kafka';
import { mqtt } from '@omnibus/adapter-mqtt';
import { rabbitmq } from '@omnibus/adapter-rabbitmq';
import { stomp } from '@omnibus/adapter-stomp';
import { type AdapterFactory, connect } from '@omnibus/core';
import { type BrokerName, brokerAvailable, brokerUrls } from '@omnibus/test-brokers';
import { describe, it } from 'vitest';
import { observabilityChecks, type SetUp } from './checks.js';

const urls = brokerUrls();
// Test-sized Kafka group timings: joins and rebalances in about a second instead of several.
const KAFKA_PARAMS =
  'heartbeatIntervalMs=500&sessionTimeoutMs=10000&rebalanceTimeoutMs=10000&maxWaitTimeMs=250';

interface BrokerSetUp extends Omit<SetUp, 'connect'> {
  readonly name: string;
  readonly broker: BrokerName;
  readonly url: string;
  readonly adapter: () => AdapterFactory;
}

const setUps: BrokerSetUp[] = [
  {
    name: 'RabbitMQ',
    broker: 'rabbitmq',
    url: urls.amqp,
    adapter: rabbitmq,
    system: 'rabbitmq',
    carriesContext: true,
    timeoutMs: 15_000,
  },
  {
    name: 'Kafka',
    broker: 'kafka',
    url: `kafka://${urls.kafkaBrokers.join(',')}?${KAFKA_PARAMS}`,
    adapter: kafka,
    system: 'kafka',
    carriesContext: true,
    timeoutMs: 30_000,
  },
  {
    name: 'MQTT 5',
    broker: 'mosquitto',
    url: urls.mqtt,
    adapter: mqtt,
    system: 'mqtt',
    carriesContext: true,
    timeoutMs: 15_000,
  },
  {
    name: 'MQTT 3.1.1',
    broker: 'mosquitto',
    url: `${urls.mqtt}${urls.mqtt.includes('?') ? '&' : '?'}protocolVersion=4`,
    adapter: mqtt,
    system: 'mqtt',
    carriesContext: false,
    keys: false,
    timeoutMs: 15_000,
  },
  {
    // The 3.1.1 envelope wraps headers into the payload (headers: emulated): context travels there.
    name: 'MQTT 3.1.1 + envelope',
    broker: 'mosquitto',
    url: `${urls.mqtt}${urls.mqtt.includes('?') ? '&' : '?'}protocolVersion=4&envelope=true`,
    adapter: mqtt,
    system: 'mqtt',
    carriesContext: true,
    timeoutMs: 15_000,
  },
  {
    name: 'STOMP → RabbitMQ',
    broker: 'rabbitmq-stomp',
    url: urls.stomp,
    adapter: stomp,
    system: 'stomp',
    carriesContext: true,
    timeoutMs: 15_000,
  },
  {
    name: 'STOMP → ActiveMQ',
    broker: 'activemq',
    url: urls.activemqStomp,
    adapter: stomp,
    system: 'stomp',
    carriesContext: true,
    timeoutMs: 15_000,
  },
];

for (const setUp of setUps) {
  const availability = await brokerAvailable(setUp.broker);
  if (!availability.ok) {
    describe.skip(`${setUp.name} (${availability.reason})`, () => it('needs the broker', () => undefined));
    continue;
  }
  describe(setUp.name, { timeout: setUp.timeoutMs * 4 }, () => {
    observabilityChecks({
      ...setUp,
      connect: () => connect(setUp.url, { clientId: 'omnibus-otel-test', adapters: [setUp.adapter()] }),
    });
  });
}
