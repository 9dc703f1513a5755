import { randomUUID } from 'node:crypto';
import { type Inject, runContractSuite } from '@omnibus/contract';
import { connect } from '@omnibus/core';
import mqttjs, { type MqttClient } from 'mqtt';
import { afterAll, describe, it } from 'vitest';
import { mqtt } from '../src/index.js';
import { MQTT_URL, mosquittoAvailable, restartMosquitto } from './broker.js';

const available = await mosquittoAvailable();
if (!available.ok) {
  console.warn(`[mqtt] skipping the contract suite: ${available.reason}`);
  describe.skip('contract: mqtt', () => it('needs Mosquitto', () => undefined));
} else {
  if (restartMosquitto === undefined) {
    console.warn('[mqtt] no scripts/brokers.sh (nor OMNIBUS_BROKERS_SH): restart tests are skipped');
  }
  const join = (extra: string) => `${MQTT_URL}${MQTT_URL.includes('?') ? '&' : '?'}${extra}`;
  const runs = [
    // Sessions a test leaves behind (durable subscriptions) expire after an hour instead of a week.
    { name: 'mqtt 5 → mosquitto', url: join('sessionExpirySec=3600'), inject: foreignPublisher(5) },
    {
      name: 'mqtt 3.1.1 → mosquitto',
      url: join('protocolVersion=4'),
      inject: foreignPublisher(4),
      // On 3.1.1 a queue message may wait in the holder until a consumer's holder check (README:
      // holderCheckMs, 5 s jittered to at most 6.25 s), and a check whose holder another bus takes
      // over at that moment fails and waits for the next: 12.5 s before the message moves.
      timeoutMs: 20_000,
      testTimeoutMs: 150_000,
    },
    {
      name: 'mqtt 3.1.1 + envelope → mosquitto',
      url: join('protocolVersion=4&envelope=true&holderCheckMs=1000'),
      inject: foreignPublisher(4, { envelope: true }),
    },
  ];
  for (const run of runs) {
    await runContractSuite({
      name: run.name,
      connect: (options) => connect(run.url, { ...options, adapters: [mqtt()] }),
      ...('timeoutMs' in run ? { timeoutMs: run.timeoutMs, testTimeoutMs: run.testTimeoutMs } : {}),
      ...(restartMosquitto === undefined ? {} : { restartBroker: restartMosquitto }),
      inject: run.inject,
    });
  }
}

/**
 * A plain mqtt.js client publishing at QoS 1 to the topic the adapter consumes a queue from
 * (`omnibus/queue/<name>`, the default queuePrefix), as another MQTT application would: MQTT 5
 * headers as user properties and the content type as its property, no x-omnibus- property, no id.
 * MQTT 3.1.1 has nowhere for headers: in envelope mode a producer that knows the documented
 * envelope wraps them into the payload (without an id); without it, headers cannot be sent.
 */
function foreignPublisher(protocolVersion: 4 | 5, options: { readonly envelope?: boolean } = {}): Inject {
  let client: Promise<MqttClient> | undefined;
  afterAll(async () => {
    const opened = client;
    client = undefined;
    if (opened !== undefined) await (await opened).endAsync().catch(() => undefined);
  });
  return async (target, message) => {
    client ??= mqttjs.connectAsync(MQTT_URL, {
      protocolVersion,
      clientId: `omnibus-foreign-${randomUUID().slice(0, 8)}`,
      reconnectPeriod: 500,
    });
    const publisher = await client;
    const topic = `omnibus/queue/${target.name}`;
    const headers = message.headers ?? {};
    const hasHeaders = Object.keys(headers).length > 0;
    if (protocolVersion === 5) {
      await publisher.publishAsync(topic, Buffer.from(message.body), {
        qos: 1,
        properties: {
          ...(hasHeaders ? { userProperties: { ...headers } } : {}),
          ...(message.contentType === undefined ? {} : { contentType: message.contentType }),
        },
      });
      return;
    }
    if (hasHeaders && options.envelope !== true) {
      throw new Error('MQTT 3.1.1 without the envelope cannot carry headers');
    }
    const payload = hasHeaders
      ? envelope(headers, message.contentType, message.body)
      : Buffer.from(message.body);
    await publisher.publishAsync(topic, payload, { qos: 1 });
  };
}

/**
 * The documented MQTT 3.1.1 envelope (core's envelope.ts: `\0OMB\x01`, a big-endian u32 length, the
 * JSON header bag, the body), written by hand as another producer would: no id, no timestamp.
 */
function envelope(
  headers: Readonly<Record<string, string>>,
  contentType: string | undefined,
  body: Uint8Array,
) {
  const bag = Buffer.from(
    JSON.stringify({
      ...headers,
      ...(contentType === undefined ? {} : { 'x-omnibus-content-type': contentType }),
    }),
  );
  const length = Buffer.alloc(4);
  length.writeUInt32BE(bag.length);
  return Buffer.concat([Buffer.from([0x00, 0x4f, 0x4d, 0x42, 0x01]), length, bag, body]);
}
