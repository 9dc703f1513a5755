/**
 * Where the test brokers are, and whether they answer.
 *
 * Tests reach brokers through env vars with local defaults (the ports of `scripts/brokers.sh`,
 * see docs/brokers.md). A suite whose broker is not reachable is skipped with a printed reason;
 * under `OMNIBUS_REQUIRE_BROKERS=1` (CI) it fails instead:
 *
 * ```ts
 * const avail = await brokerAvailable('kafka');
 * if (!avail.ok) console.warn(`skipping Kafka tests: ${avail.reason}`);
 * describe.skipIf(!avail.ok)('kafka', () => { ... });
 * ```
 *
 * Dependency-free (node:net only) so it can be imported anywhere, before any client library.
 */
import { connect } from 'node:net';

/** The brokers of `scripts/brokers.sh`; `rabbitmq-stomp` is RabbitMQ's STOMP plugin. */
export type BrokerName = 'rabbitmq' | 'rabbitmq-stomp' | 'mosquitto' | 'activemq' | 'kafka';

export interface BrokerUrls {
  /** AMQP_URL: RabbitMQ over AMQP 0-9-1. */
  readonly amqp: string;
  /** MQTT_URL: Mosquitto. */
  readonly mqtt: string;
  /** STOMP_URL: RabbitMQ's STOMP plugin. */
  readonly stomp: string;
  /** ACTIVEMQ_STOMP_URL: ActiveMQ Classic over STOMP. */
  readonly activemqStomp: string;
  /** KAFKA_BROKERS: comma-separated host:port bootstrap list. */
  readonly kafkaBrokers: readonly string[];
}

export const DEFAULT_BROKER_URLS: BrokerUrls = {
  amqp: 'amqp://guest:guest@127.0.0.1:5672',
  mqtt: 'mqtt://127.0.0.1:1883',
  stomp: 'stomp://guest:guest@127.0.0.1:61613',
  activemqStomp: 'stomp://admin:admin@127.0.0.1:61614',
  kafkaBrokers: ['127.0.0.1:9092'],
};

function fromEnv(env: NodeJS.ProcessEnv, key: string): string | undefined {
  const value = env[key]?.trim();
  return value ? value : undefined;
}

/** Broker addresses from the environment (AMQP_URL, MQTT_URL, STOMP_URL, ACTIVEMQ_STOMP_URL, KAFKA_BROKERS). */
export function brokerUrls(env: NodeJS.ProcessEnv = process.env): BrokerUrls {
  const kafka = fromEnv(env, 'KAFKA_BROKERS');
  return {
    amqp: fromEnv(env, 'AMQP_URL') ?? DEFAULT_BROKER_URLS.amqp,
    mqtt: fromEnv(env, 'MQTT_URL') ?? DEFAULT_BROKER_URLS.mqtt,
    stomp: fromEnv(env, 'STOMP_URL') ?? DEFAULT_BROKER_URLS.stomp,
    activemqStomp: fromEnv(env, 'ACTIVEMQ_STOMP_URL') ?? DEFAULT_BROKER_URLS.activemqStomp,
    kafkaBrokers: kafka
      ? kafka
          .split(',')
          .map((b) => b.trim())
          .filter((b) => b.length > 0)
      : DEFAULT_BROKER_URLS.kafkaBrokers,
  };
}

/** The URL (or Kafka bootstrap list) a broker is reached at, for messages. */
export function brokerUrl(name: BrokerName, urls: BrokerUrls = brokerUrls()): string {
  switch (name) {
    case 'rabbitmq':
      return urls.amqp;
    case 'rabbitmq-stomp':
      return urls.stomp;
    case 'mosquitto':
      return urls.mqtt;
    case 'activemq':
      return urls.activemqStomp;
    case 'kafka':
      return urls.kafkaBrokers.join(',');
  }
}

/**
 * Hides the user and password of a URL: `amqp://***@host:5672`. Everything up to the LAST `@` goes,
 * so a password with an unencoded `/`, `?`, `#` or `@` is hidden too.
 */
export function redactUrl(url: string): string {
  return url.replace(/^([a-z][a-z0-9+.-]*:\/\/)[\s\S]*@/i, '$1***@');
}

const DEFAULT_PORTS: Readonly<Record<string, number>> = {
  'amqp:': 5672,
  'amqps:': 5671,
  'mqtt:': 1883,
  'mqtts:': 8883,
  'tcp:': 1883,
  'ssl:': 8883,
  'ws:': 80,
  'wss:': 443,
  'stomp:': 61613,
};

export interface Endpoint {
  readonly host: string;
  readonly port: number;
}

function endpointOfUrl(url: string): Endpoint {
  const parsed = new URL(url);
  const port = parsed.port ? Number(parsed.port) : DEFAULT_PORTS[parsed.protocol];
  if (!parsed.hostname || port === undefined)
    throw new Error(`cannot tell host and port of ${redactUrl(url)}`);
  return { host: parsed.hostname.replace(/^\[(.*)\]$/, '$1'), port };
}

function endpointOfHostPort(hostPort: string): Endpoint {
  const match = /^(?:[a-z]+:\/\/)?(\[[^\]]+\]|[^:]+):(\d+)$/i.exec(hostPort);
  if (!match?.[1] || !match[2]) throw new Error(`cannot tell host and port of ${hostPort}`);
  return { host: match[1].replace(/^\[(.*)\]$/, '$1'), port: Number(match[2]) };
}

function endpoints(name: BrokerName, urls: BrokerUrls): Endpoint[] {
  if (name === 'kafka') return urls.kafkaBrokers.map(endpointOfHostPort);
  return [endpointOfUrl(brokerUrl(name, urls))];
}

/** Resolves with undefined when a TCP connection to `host:port` opens, or with the reason it did not. */
export function tcpReachable({ host, port }: Endpoint, timeoutMs: number): Promise<string | undefined> {
  return new Promise((resolve) => {
    const socket = connect({ host, port });
    const finish = (reason: string | undefined) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(reason);
    };
    const timer = setTimeout(
      () => finish(`no TCP connection to ${host}:${port} within ${timeoutMs} ms`),
      timeoutMs,
    );
    socket.once('connect', () => finish(undefined));
    socket.once('error', (err: NodeJS.ErrnoException) =>
      finish(`${err.code ?? err.message} on ${host}:${port}`),
    );
  });
}

export interface ProbeOptions {
  /** Per-connection timeout; default 1500 ms. */
  readonly timeoutMs?: number;
  readonly urls?: BrokerUrls;
}

/**
 * Checks that a broker accepts TCP connections. Resolves with undefined when it does, or with
 * a reason (naming the redacted URL) when it does not. For Kafka one reachable bootstrap
 * address is enough, as for a client.
 */
export async function probeBroker(name: BrokerName, options: ProbeOptions = {}): Promise<string | undefined> {
  const urls = options.urls ?? brokerUrls();
  const timeoutMs = options.timeoutMs ?? 1500;
  const where = redactUrl(brokerUrl(name, urls));
  let targets: Endpoint[];
  try {
    targets = endpoints(name, urls);
  } catch (err) {
    return `${name}: ${err instanceof Error ? err.message : String(err)}`;
  }
  if (targets.length === 0) return `${name}: no address configured`;
  const reasons: string[] = [];
  for (const target of targets) {
    const reason = await tcpReachable(target, timeoutMs);
    if (reason === undefined) return undefined;
    reasons.push(reason);
  }
  return `${name} is not reachable at ${where} (${reasons.join('; ')}); start it with \`pnpm brokers:up\``;
}

export type BrokerAvailability = { readonly ok: true } | { readonly ok: false; readonly reason: string };

/** True when OMNIBUS_REQUIRE_BROKERS=1 (CI): an unreachable broker is an error, not a skip. */
export function brokersRequired(env: NodeJS.ProcessEnv = process.env): boolean {
  const value = env.OMNIBUS_REQUIRE_BROKERS?.trim().toLowerCase();
  return value === '1' || value === 'true' || value === 'yes';
}

/**
 * Whether a broker's suites can run. Not reachable: `{ ok: false, reason }` to skip with, or,
 * under OMNIBUS_REQUIRE_BROKERS=1, an Error naming the broker and its (redacted) URL.
 */
export async function brokerAvailable(
  name: BrokerName,
  options: ProbeOptions = {},
): Promise<BrokerAvailability> {
  const reason = await probeBroker(name, options);
  if (reason === undefined) return { ok: true };
  if (brokersRequired()) {
    throw new Error(`OMNIBUS_REQUIRE_BROKERS=1 and ${reason}`);
  }
  return { ok: false, reason };
}
