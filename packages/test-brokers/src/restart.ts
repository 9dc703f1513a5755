/**
 * Restarting and stopping the test brokers through `scripts/brokers.sh` (or OMNIBUS_BROKERS_SH,
 * the script of the clone that started them), for the tests that prove recovery.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);
const repo = fileURLToPath(new URL('../../../', import.meta.url));

/** The brokers script, or undefined when there is none (a published copy of a test). */
export function brokersScript(): string | undefined {
  const script = process.env.OMNIBUS_BROKERS_SH ?? `${repo}scripts/brokers.sh`;
  return existsSync(script) ? script : undefined;
}

/** A broker `scripts/brokers.sh` manages; `kafka-N` is one node of a `KAFKA_NODES=3` cluster. */
export type BrokerProcessName = 'rabbitmq' | 'mosquitto' | 'activemq' | 'kafka' | `kafka-${number}`;

/**
 * `brokers.sh <action> <name>`: restart, stop or start one broker; resolves once it is done.
 * `env` reaches the script (e.g. `{ KAFKA_NODES: '3' }` with `start kafka` re-forms Kafka as a cluster).
 */
export async function brokers(
  action: 'restart' | 'stop' | 'start',
  name: BrokerProcessName,
  env: Readonly<Record<string, string>> = {},
): Promise<void> {
  const script = brokersScript();
  if (script === undefined) throw new Error('no scripts/brokers.sh (nor OMNIBUS_BROKERS_SH) to run');
  const verb = action === 'start' ? 'up' : action;
  await run('bash', [script, verb, name], { cwd: repo, timeout: 300_000, env: { ...process.env, ...env } });
}

/** A restarter for the contract suite, or undefined without a brokers script. */
export function restarter(name: Parameters<typeof brokers>[1]): (() => Promise<void>) | undefined {
  return brokersScript() === undefined ? undefined : () => brokers('restart', name);
}
