/**
 * The RabbitMQ the tests run against: `AMQP_URL` (default amqp://guest:guest@127.0.0.1:5672),
 * a reachability probe (skip with a reason, or fail when OMNIBUS_REQUIRE_BROKERS=1), and a restart.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { connect as tcp } from 'node:net';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { parseUrl } from '@omnibus/core';

export const AMQP_URL = process.env.AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672';

const run = promisify(execFile);
const root = fileURLToPath(new URL('../../../', import.meta.url));

/** Resolves with why RabbitMQ cannot be used, or undefined when it answers on its port. */
export async function unavailable(): Promise<string | undefined> {
  const host = parseUrl(AMQP_URL).hosts[0];
  const port = host?.port ?? 5672;
  const reason = await new Promise<string | undefined>((resolve) => {
    const socket = tcp({ host: host?.host ?? '127.0.0.1', port, timeout: 2000 });
    socket.once('connect', () => {
      socket.destroy();
      resolve(undefined);
    });
    socket.once('timeout', () => {
      socket.destroy();
      resolve('timed out');
    });
    socket.once('error', (error) => resolve(error.message));
  });
  if (reason === undefined) return undefined;
  const message = `RabbitMQ is not reachable at ${parseUrl(AMQP_URL).redacted} (${reason}); start it with scripts/brokers.sh up rabbitmq`;
  if (process.env.OMNIBUS_REQUIRE_BROKERS === '1') throw new Error(message);
  console.warn(`[adapter-rabbitmq] skipping: ${message}`);
  return message;
}

/**
 * Restarts the broker: `scripts/brokers.sh restart rabbitmq` when the repository has it (the whole
 * node goes down, sockets and all), otherwise `rabbitmqctl stop_app` + `start_app` (the RabbitMQ
 * application stops, clients are disconnected, durable queues and persistent messages come back).
 */
export async function restartBroker(): Promise<void> {
  const script = `${root}scripts/brokers.sh`;
  const env = { ...process.env, PATH: `${process.env.PATH ?? ''}:/usr/sbin:/sbin` };
  if (existsSync(script)) {
    await run('bash', [script, 'restart', 'rabbitmq'], { cwd: root, env, timeout: 180_000 });
    return;
  }
  await run('rabbitmqctl', ['-q', 'stop_app'], { env, timeout: 120_000 });
  await run('rabbitmqctl', ['-q', 'start_app'], { env, timeout: 120_000 });
}
