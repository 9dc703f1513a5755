/**
 * The TLS listeners and access-control set-up of `scripts/brokers.sh` (docs/brokers.md, "TLS and
 * access control"): where they are, the test CA, and the users the security tests log in as.
 *
 * The CA and the broker certificate are in `<BROKERS_DIR>/tls` (default `/var/tmp/omnibus-brokers/tls`;
 * OMNIBUS_TLS_DIR overrides it). Like `brokerAvailable`, `secureAvailable` skips a suite whose
 * listener does not answer, or fails it under OMNIBUS_REQUIRE_BROKERS=1.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { type BrokerAvailability, brokersRequired, tcpReachable } from './brokers.js';

/** One TLS (or password-only) listener of `scripts/brokers.sh`. */
export type SecureListener =
  | 'rabbitmq-amqps'
  | 'rabbitmq-stomps'
  | 'mosquitto-tls'
  | 'mosquitto-auth'
  | 'activemq-stomps'
  | 'kafka-ssl'
  | 'kafka-sasl';

/** The ports brokers.sh opens for them (Kafka: node 1). */
export const SECURE_PORTS: Readonly<Record<SecureListener, number>> = {
  'rabbitmq-amqps': 5671,
  'rabbitmq-stomps': 61615,
  'mosquitto-tls': 8883,
  'mosquitto-auth': 1884,
  'activemq-stomps': 61612,
  'kafka-ssl': 9192,
  'kafka-sasl': 9292,
};

/** Test-only credentials brokers.sh sets up (loopback brokers, no real data). */
export const SECURE_USERS = {
  /** Mosquitto on 1884, anonymous access off. */
  mosquitto: { username: 'omnibus', password: 'omnibus-mqtt-secret' },
  /** Kafka SASL_SSL, SCRAM-SHA-256 and SCRAM-SHA-512. */
  kafkaScram: { username: 'omnibus', password: 'omnibus-scram-secret' },
  /**
   * RabbitMQ: may configure, write and read only names starting with `prefix` on vhost `/`, and
   * has no permission at all on `privateVhost` (where guest has all).
   */
  rabbitmqLimited: {
    username: 'omnibus-limited',
    password: 'omnibus-limited-secret',
    prefix: 'omnibus-limited.',
    privateVhost: 'omnibus-private',
  },
} as const;

export interface TlsFiles {
  readonly dir: string;
  /** The CA that signed every broker's certificate. */
  readonly ca: string;
  /** A CA no broker uses: the wrong CA. */
  readonly otherCa: string;
}

/** Where the test CA is. */
export function tlsFiles(env: NodeJS.ProcessEnv = process.env): TlsFiles {
  const dir =
    env.OMNIBUS_TLS_DIR?.trim() ||
    (env.BROKERS_DIR?.trim() ? join(env.BROKERS_DIR.trim(), 'tls') : join('/var/tmp/omnibus-brokers', 'tls'));
  return { dir, ca: join(dir, 'ca.pem'), otherCa: join(dir, 'other-ca.pem') };
}

/**
 * Whether a listener's tests can run: the test CA exists and the port accepts TCP connections.
 * Not so: `{ ok: false, reason }`, or under OMNIBUS_REQUIRE_BROKERS=1 an Error.
 */
export async function secureAvailable(
  listener: SecureListener,
  options: { readonly timeoutMs?: number; readonly env?: NodeJS.ProcessEnv } = {},
): Promise<BrokerAvailability> {
  const env = options.env ?? process.env;
  const files = tlsFiles(env);
  const port = SECURE_PORTS[listener];
  let reason: string | undefined;
  if (listener !== 'mosquitto-auth' && !existsSync(files.ca)) {
    reason = `no test CA at ${files.ca}`;
  } else {
    const unreachable = await tcpReachable({ host: '127.0.0.1', port }, options.timeoutMs ?? 1500);
    if (unreachable !== undefined) reason = unreachable;
  }
  if (reason === undefined) return { ok: true };
  const full = `${listener} is not available (${reason}); start it with \`pnpm brokers:up\``;
  if (brokersRequired(env)) throw new Error(`OMNIBUS_REQUIRE_BROKERS=1 and ${full}`);
  return { ok: false, reason: full };
}
