// Shared bits of the raw broker tests (test/brokers/*.test.ts). These tests use the client
// libraries directly, with no Omnibus code, so a broker problem shows up as a broker problem.
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { delay } from '@omnibus/core';

const run = promisify(execFile);
const brokersScript = fileURLToPath(new URL('../../scripts/brokers.sh', import.meta.url));

/** OMNIBUS_BROKER_RESTART_TESTS=1 turns on the tests that restart the shared brokers. */
export const restartTests = process.env.OMNIBUS_BROKER_RESTART_TESTS === '1';

/** A name no other test run uses. */
export function uniqueName(prefix: string): string {
  return `${prefix}-${randomUUID().slice(0, 8)}`;
}

/** `scripts/brokers.sh restart NAME`; resolves with the seconds it took. */
export async function restartBroker(name: string): Promise<number> {
  const started = Date.now();
  await run('bash', [brokersScript, 'restart', name], { timeout: 240_000 });
  return (Date.now() - started) / 1000;
}

/** Resolves when `predicate()` is true, polling; rejects after `timeoutMs`. */
export async function waitFor(what: string, predicate: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await delay(20);
  }
}
