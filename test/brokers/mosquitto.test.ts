// Mosquitto with the raw client: mqtt.js, MQTT 5, QoS 1. Publisher and subscriber use separate
// connections (PITFALLS.md: mqtt.js handles one incoming packet at a time).

import { brokerAvailable, brokerUrls } from '@omnibus/test-brokers';
import mqtt from 'mqtt';
import { describe, expect, it } from 'vitest';
import { restartBroker, restartTests, uniqueName, waitFor } from './helpers.js';

const urls = brokerUrls();
const avail = await brokerAvailable('mosquitto');
if (!avail.ok) console.warn(`skipping Mosquitto tests: ${avail.reason}`);

interface Received {
  topic: string;
  payload: string;
  userProperties: Record<string, string | string[]> | undefined;
}

function collect(client: mqtt.MqttClient): Received[] {
  const received: Received[] = [];
  client.on('message', (topic, payload, packet) => {
    received.push({ topic, payload: payload.toString(), userProperties: packet.properties?.userProperties });
  });
  return received;
}

describe.skipIf(!avail.ok)('Mosquitto (mqtt.js, MQTT 5)', () => {
  it('publishes at QoS 1 and receives it on a subscription', async () => {
    const topic = `omnibus/raw/${uniqueName('t')}`;
    const subscriber = await mqtt.connectAsync(urls.mqtt, {
      protocolVersion: 5,
      clientId: uniqueName('sub'),
    });
    const publisher = await mqtt.connectAsync(urls.mqtt, { protocolVersion: 5, clientId: uniqueName('pub') });
    try {
      const received = collect(subscriber);
      const granted = await subscriber.subscribeAsync(topic, { qos: 1 });
      expect(granted[0]?.qos).toBe(1);
      // Resolves (with the sent packet) once the PUBACK is in.
      const sent = await publisher.publishAsync(topic, 'hello mqtt', {
        qos: 1,
        properties: { userProperties: { 'x-test': 'omnibus' } },
      });
      expect(sent?.cmd).toBe('publish');
      await waitFor('the message', () => received.length === 1);
      expect(received[0]).toEqual({ topic, payload: 'hello mqtt', userProperties: { 'x-test': 'omnibus' } });
    } finally {
      await Promise.all([subscriber.endAsync(), publisher.endAsync()]);
    }
  });

  it('queues more than the default 1000 QoS 1 messages for an offline persistent session', async () => {
    // Mosquitto's default max_queued_messages (1000) would drop the rest; our config keeps them.
    const topic = `omnibus/raw/${uniqueName('queue')}`;
    const clientId = uniqueName('persistent');
    const count = 2500;
    const options = {
      protocolVersion: 5 as const,
      clientId,
      clean: false,
      properties: { sessionExpiryInterval: 300 },
    };
    const first = await mqtt.connectAsync(urls.mqtt, options);
    await first.subscribeAsync(topic, { qos: 1 });
    await first.endAsync();

    const publisher = await mqtt.connectAsync(urls.mqtt, { protocolVersion: 5, clientId: uniqueName('pub') });
    await Promise.all(
      Array.from({ length: count }, (_, i) => publisher.publishAsync(topic, String(i), { qos: 1 })),
    );
    await publisher.endAsync();

    const again = mqtt.connect(urls.mqtt, { ...options, manualConnect: true });
    const received = collect(again);
    again.connect();
    try {
      // On timeout, the count below says how many Mosquitto kept (1000 + in-flight by default).
      await waitFor(`${count} queued messages`, () => received.length >= count, 20_000).catch(
        () => undefined,
      );
      expect(new Set(received.map((r) => r.payload)).size).toBe(count);
    } finally {
      // Session expiry 0 on the way out: leave no session behind.
      await again.endAsync(false, { properties: { sessionExpiryInterval: 0 } });
    }
  });
});

describe.skipIf(!avail.ok || !restartTests)('Mosquitto restart (OMNIBUS_BROKER_RESTART_TESTS=1)', () => {
  it('keeps a persistent session and its queued message across brokers.sh restart mosquitto', {
    timeout: 120_000,
  }, async () => {
    const topic = `omnibus/raw/${uniqueName('restart')}`;
    const options = {
      protocolVersion: 5 as const,
      clientId: uniqueName('persistent'),
      clean: false,
      properties: { sessionExpiryInterval: 300 },
    };
    const first = await mqtt.connectAsync(urls.mqtt, options);
    await first.subscribeAsync(topic, { qos: 1 });
    await first.endAsync();
    const publisher = await mqtt.connectAsync(urls.mqtt, { protocolVersion: 5, clientId: uniqueName('pub') });
    await publisher.publishAsync(topic, 'survives', { qos: 1 });
    await publisher.endAsync();

    const seconds = await restartBroker('mosquitto');
    console.warn(`brokers.sh restart mosquitto took ${seconds.toFixed(1)} s`);

    const again = mqtt.connect(urls.mqtt, { ...options, manualConnect: true });
    const received = collect(again);
    again.connect();
    try {
      await waitFor('the queued message', () => received.length === 1);
      expect(received[0]?.payload).toBe('survives');
    } finally {
      await again.endAsync(false, { properties: { sessionExpiryInterval: 0 } });
    }
  });
});
