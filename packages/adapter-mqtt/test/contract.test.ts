import { runContractSuite } from '@omnibus/contract';
import { connect } from '@omnibus/core';
import { describe, it } from 'vitest';
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
    { name: 'mqtt 5 → mosquitto', url: join('sessionExpirySec=3600') },
    { name: 'mqtt 3.1.1 → mosquitto', url: join('protocolVersion=4') },
    {
      name: 'mqtt 3.1.1 + envelope → mosquitto',
      url: join('protocolVersion=4&envelope=true&holderCheckMs=1000'),
    },
  ];
  for (const run of runs) {
    await runContractSuite({
      name: run.name,
      connect: (options) => connect(run.url, { ...options, adapters: [mqtt()] }),
      ...(restartMosquitto === undefined ? {} : { restartBroker: restartMosquitto }),
    });
  }
}
