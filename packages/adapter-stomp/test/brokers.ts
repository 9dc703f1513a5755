/**
 * Where the test brokers are and whether they answer STOMP (`brokerAvailable` from
 * @omnibus/contract): without OMNIBUS_REQUIRE_BROKERS=1 an unavailable broker skips its suites with
 * a printed reason; with it, the suite fails.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { brokerAvailable, brokerUrls } from '@omnibus/test-brokers';

export const RABBITMQ_STOMP_URL = brokerUrls().stomp;
export const ACTIVEMQ_STOMP_URL = brokerUrls().activemqStomp;

/** Prints why the suite is skipped (and fails under OMNIBUS_REQUIRE_BROKERS=1). */
export async function brokerOrSkip(name: string, url: string): Promise<boolean> {
  const broker = url.startsWith(ACTIVEMQ_STOMP_URL) ? 'activemq' : 'rabbitmq-stomp';
  const availability = await brokerAvailable(broker);
  if (availability.ok) return true;
  console.warn(`[stomp tests] skipping ${name}: ${availability.reason}`);
  return false;
}

const repoRoot = fileURLToPath(new URL('../../../', import.meta.url));
const script = `${repoRoot}scripts/brokers.sh`;

/** `scripts/brokers.sh restart <broker>` (test files run one at a time: no other suite loses its broker). */
export function restarter(broker: 'rabbitmq' | 'activemq'): (() => Promise<void>) | undefined {
  if (!existsSync(script)) return undefined;
  return () =>
    new Promise<void>((resolve, reject) => {
      execFile(
        'bash',
        [script, 'restart', broker],
        { cwd: repoRoot, timeout: 240_000 },
        (error, _out, err) =>
          error === null
            ? resolve()
            : reject(new Error(`brokers.sh restart ${broker} failed: ${err}`, { cause: error })),
      );
    });
}
