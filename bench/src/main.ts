/**
 * `pnpm bench [target…]` — runs raw-vs-Omnibus pairs and prints a table with the ratios.
 * Targets: memory (default), rabbitmq, mqtt, kafka, stomp-rabbitmq, stomp-activemq. Broker targets are added by the adapters (see bench/README.md).
 * `BENCH_ROUNDS` (default 3) sets how many alternating rounds each pair runs.
 */
import { compare, MESSAGE_BYTES, type Result, type Scenario, table } from './harness.js';
import { memoryScenarios } from './memory.js';

const TARGETS: Record<string, () => Promise<Scenario[]>> = {
  memory: async () => memoryScenarios,
  // Loaded on demand: a target's client library is imported only when it runs.
  rabbitmq: async () => (await import('./rabbitmq.js')).rabbitmqScenarios,
  mqtt: async () => (await import('./mqtt.js')).mqttScenarios,
  kafka: async () => (await import('./kafka.js')).kafkaScenarios,
  'stomp-rabbitmq': async () => (await import('./stomp.js')).stompScenarios('rabbitmq'),
  'stomp-activemq': async () => (await import('./stomp.js')).stompScenarios('activemq'),
  channels: async () => (await import('./tracing.js')).channelScenarios(),
  'otel-memory': async () => (await import('./tracing.js')).tracingScenarios(memoryScenarios),
  'otel-rabbitmq': async () =>
    (await import('./tracing.js')).tracingScenarios((await import('./rabbitmq.js')).rabbitmqScenarios),
  'otel-kafka': async () =>
    (await import('./tracing.js')).tracingScenarios((await import('./kafka.js')).kafkaScenarios),
  'otel-mqtt': async () =>
    (await import('./tracing.js')).tracingScenarios((await import('./mqtt.js')).mqttScenarios),
  'otel-stomp-rabbitmq': async () =>
    (await import('./tracing.js')).tracingScenarios((await import('./stomp.js')).stompScenarios('rabbitmq')),
  'otel-stomp-activemq': async () =>
    (await import('./tracing.js')).tracingScenarios((await import('./stomp.js')).stompScenarios('activemq')),
};

const wanted = process.argv.slice(2).filter((a) => a !== '--');
const targets = wanted.length > 0 ? wanted : ['memory'];
const unknown = targets.filter((t) => TARGETS[t] === undefined);
if (unknown.length > 0) {
  console.error(`unknown bench target(s): ${unknown.join(', ')}; known: ${Object.keys(TARGETS).join(', ')}`);
  process.exit(2);
}
const rounds = Number(process.env.BENCH_ROUNDS ?? 3);
console.log(
  `omnibus bench: ${MESSAGE_BYTES}-byte messages, ${rounds} alternating rounds per pair, median shown`,
);
const results: Result[] = [];
for (const target of targets) {
  for (const scenario of await TARGETS[target]!()) {
    results.push(await compare(scenario, rounds));
    console.log(`  done: ${scenario.name}`);
  }
}
console.log(table(results));
