/**
 * The broker set-ups the fault suite runs on, each connected through its adapter factory (as the
 * adapters' contract tests do), with short heart-beats so a silent network loss is detected in
 * seconds, and the bound on that detection derived from the configured interval.
 */

import { kafka } from '@omnibus/adapter-kafka';
import { mqtt } from '@omnibus/adapter-mqtt';
import { rabbitmq } from '@omnibus/adapter-rabbitmq';
import { stomp } from '@omnibus/adapter-stomp';
import type { AdapterFactory } from '@omnibus/core';
import { type BrokerName, brokerUrls } from '@omnibus/test-brokers';

export interface Endpoint {
  readonly host: string;
  readonly port: number;
}

/** The broker process `scripts/brokers.sh` restarts, stops and starts for a set-up. */
export type BrokerProcess = 'rabbitmq' | 'mosquitto' | 'activemq' | 'kafka';

export interface Setup {
  /** Printed in every result line. */
  readonly name: string;
  /** For `brokerAvailable`: skip (or fail under OMNIBUS_REQUIRE_BROKERS=1) when it does not answer. */
  readonly broker: BrokerName;
  readonly process: BrokerProcess;
  /** Where the broker listens (one entry per Kafka bootstrap broker). */
  readonly endpoints: readonly Endpoint[];
  /** The URL to connect to, with these endpoints (the broker's own, or fault proxies in front of them). */
  url(endpoints: readonly Endpoint[]): string;
  readonly adapter: () => AdapterFactory;
  /**
   * The longest a silent connection (no FIN, no RST) may go unnoticed with this URL's settings,
   * before scheduling delays: the heart-beat interval times the misses the library tolerates.
   */
  readonly silentDetectMs: number;
  /** What `silentDetectMs` comes from, for the printed line and docs/reliability.md. */
  readonly detectRule: string;
}

const urls = brokerUrls();

function endpointOf(url: string): Endpoint {
  const parsed = new URL(url);
  return { host: parsed.hostname.replace(/^\[(.*)\]$/, '$1'), port: Number(parsed.port) };
}

/** `url` with its host and port replaced and `query` added (credentials and path kept). */
function rewrite(url: string, to: Endpoint, query: string): string {
  const parsed = new URL(url);
  parsed.hostname = to.host;
  parsed.port = String(to.port);
  for (const [key, value] of new URLSearchParams(query)) parsed.searchParams.set(key, value);
  return parsed.toString();
}

function only(endpoints: readonly Endpoint[]): Endpoint {
  const first = endpoints[0];
  if (first === undefined) throw new Error('no endpoint');
  return first;
}

// Heart-beat settings of the suite. Short, so a blackhole is found in seconds; not so short that a
// loaded machine (2 shared cores) misses beats while the network is fine.
const RABBITMQ_HEARTBEAT_S = 2;
const MQTT_KEEPALIVE_S = 2;
const STOMP_HEARTBEAT_MS = 1000;
const KAFKA = {
  requestTimeoutMs: 3000,
  retries: 2,
  heartbeatIntervalMs: 500,
  sessionTimeoutMs: 6000,
  rebalanceTimeoutMs: 10_000,
  maxWaitTimeMs: 250,
  connectionTimeoutMs: 1000,
};

function mqttSetup(name: string, extra: string): Setup {
  return {
    name,
    broker: 'mosquitto',
    process: 'mosquitto',
    endpoints: [endpointOf(urls.mqtt)],
    url: (e) =>
      rewrite(
        urls.mqtt,
        only(e),
        `keepaliveSec=${MQTT_KEEPALIVE_S}&reconnectPeriodMs=250&sessionExpirySec=3600${extra}`,
      ),
    adapter: () => mqtt(),
    // mqtt.js (5.x KeepaliveManager) ticks every keepalive/2, sends PINGREQ on the second tick and
    // gives up on the third: 1.5 × keepalive after the last reschedule, plus one tick.
    silentDetectMs: 2 * MQTT_KEEPALIVE_S * 1000,
    detectRule: `2 × keepaliveSec (${MQTT_KEEPALIVE_S} s)`,
  };
}

function stompSetup(name: string, base: string, broker: 'rabbitmq' | 'activemq'): Setup {
  return {
    name,
    broker: broker === 'rabbitmq' ? 'rabbitmq-stomp' : 'activemq',
    process: broker,
    endpoints: [endpointOf(base)],
    url: (e) => rewrite(base, only(e), `heartbeatMs=${STOMP_HEARTBEAT_MS}&maxReconnectDelayMs=1000`),
    adapter: () => stomp(),
    // stompit checks the bytes read every heartbeatMs + heartbeatDelayMargin (the adapter sets the
    // margin to max(1000, heartbeatMs)) and gives up at the first check that found none: up to two
    // check periods after the last byte.
    silentDetectMs: 2 * (STOMP_HEARTBEAT_MS + Math.max(1000, STOMP_HEARTBEAT_MS)),
    detectRule: `2 × (heartbeatMs + max(1000, heartbeatMs)) (heartbeatMs ${STOMP_HEARTBEAT_MS})`,
  };
}

export const SETUPS: readonly Setup[] = [
  {
    name: 'rabbitmq',
    broker: 'rabbitmq',
    process: 'rabbitmq',
    endpoints: [endpointOf(urls.amqp)],
    url: (e) => rewrite(urls.amqp, only(e), `heartbeat=${RABBITMQ_HEARTBEAT_S}&reconnectMaxDelayMs=1000`),
    adapter: () => rabbitmq(),
    // amqplib checks every interval and gives up at the second check in a row that found nothing
    // received: up to three intervals after the last byte.
    silentDetectMs: 3 * RABBITMQ_HEARTBEAT_S * 1000,
    detectRule: `3 × heartbeat (${RABBITMQ_HEARTBEAT_S} s)`,
  },
  {
    name: 'kafka',
    broker: 'kafka',
    process: 'kafka',
    endpoints: urls.kafkaBrokers.map((b) => endpointOf(`kafka://${b}`)),
    url: (e) =>
      `kafka://${e.map((x) => `${x.host}:${x.port}`).join(',')}?${new URLSearchParams(
        Object.entries(KAFKA).map(([k, v]): [string, string] => [k, String(v)]),
      )}`,
    adapter: () => kafka(),
    // Kafka has no transport heart-beat: a request (a fetch long poll, a group heart-beat every
    // heartbeatIntervalMs) times out after requestTimeoutMs (+ the fetch's maxWaitTimeMs), and
    // kafkajs tries `retries` more times (backoff 300 ms × 2^k, +20 % jitter) before the adapter
    // hears of it.
    silentDetectMs:
      KAFKA.heartbeatIntervalMs +
      (KAFKA.retries + 1) * (KAFKA.requestTimeoutMs + KAFKA.maxWaitTimeMs) +
      360 * (2 ** KAFKA.retries - 1),
    detectRule:
      `heartbeatIntervalMs + (retries + 1) × (requestTimeoutMs + maxWaitTimeMs) + backoff ` +
      `(${KAFKA.heartbeatIntervalMs} + ${KAFKA.retries + 1} × (${KAFKA.requestTimeoutMs} + ${KAFKA.maxWaitTimeMs}) + ${360 * (2 ** KAFKA.retries - 1)} ms)`,
  },
  mqttSetup('mqtt 5', ''),
  mqttSetup('mqtt 3.1.1', '&protocolVersion=4'),
  stompSetup('stomp → rabbitmq', urls.stomp, 'rabbitmq'),
  stompSetup('stomp → activemq', urls.activemqStomp, 'activemq'),
];

/** Set-ups chosen with OMNIBUS_FAULTS_ONLY (comma-separated names, e.g. `rabbitmq,mqtt 5`); all by default. */
export function selectedSetups(): readonly Setup[] {
  const wanted = process.env.OMNIBUS_FAULTS_ONLY?.split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  if (wanted === undefined || wanted.length === 0) return SETUPS;
  return SETUPS.filter((s) => wanted.includes(s.name));
}
