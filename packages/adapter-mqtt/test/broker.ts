/**
 * Where the test Mosquitto is and how to restart it: `brokerAvailable('mosquitto')` from
 * @omnibus/contract (unreachable: skip with the reason, or fail under OMNIBUS_REQUIRE_BROKERS=1),
 * and `scripts/brokers.sh restart mosquitto` from the repository root.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { type AdapterFactory, type Bus, connect } from '@omnibus/core';
import { brokerAvailable, brokerUrls } from '@omnibus/test-brokers';
import { mqtt } from '../src/index.js';
import type { MqttAdapter } from '../src/mqtt-adapter.js';

export const MQTT_URL = brokerUrls().mqtt;

/** MQTT_URL with more query parameters. */
export const withQuery = (query: string): string =>
  `${MQTT_URL}${MQTT_URL.includes('?') ? '&' : '?'}${query}`;

/** A bus on MQTT_URL with `query`, and the adapter instance behind it (for tests that reach into it). */
export async function busWithAdapter(query: string): Promise<{ bus: Bus; adapter: MqttAdapter }> {
  let adapter: MqttAdapter | undefined;
  const factory = mqtt();
  const capturing: AdapterFactory = {
    ...factory,
    create: async (target, context) => {
      adapter = (await factory.create(target, context)) as MqttAdapter;
      return adapter;
    },
  };
  const bus = await connect(withQuery(query), { adapters: [capturing] });
  bus.on('error', () => undefined);
  return { bus, adapter: adapter! };
}

const repo = fileURLToPath(new URL('../../../', import.meta.url));

export function mosquittoAvailable(): ReturnType<typeof brokerAvailable> {
  return brokerAvailable('mosquitto');
}

/** `scripts/brokers.sh` of this repository (or OMNIBUS_BROKERS_SH); undefined when absent. */
function brokersScript(): string | undefined {
  const script = process.env.OMNIBUS_BROKERS_SH ?? `${repo}scripts/brokers.sh`;
  return existsSync(script) ? script : undefined;
}

export const restartMosquitto: (() => Promise<void>) | undefined = (() => {
  const script = brokersScript();
  if (script === undefined) return undefined;
  return async () => {
    await promisify(execFile)('bash', [script, 'restart', 'mosquitto'], { cwd: repo, timeout: 120_000 });
  };
})();
