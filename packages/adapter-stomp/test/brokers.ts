/**
 * Where the test brokers are and whether they answer. A small TCP probe until the brokers branch's
 * `brokerAvailable` is on main. Without OMNIBUS_REQUIRE_BROKERS=1 an unreachable broker skips its
 * suites with a printed reason; with it, the suite fails.
 */

import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { connect } from 'node:net';
import { fileURLToPath } from 'node:url';
import { parseUrl } from '@omnibus/core';
import { resolveSettings } from '../src/options.js';
import { StompSession } from '../src/session.js';

export const RABBITMQ_STOMP_URL = process.env.STOMP_URL?.trim() || 'stomp://guest:guest@127.0.0.1:61613';
export const ACTIVEMQ_STOMP_URL =
  process.env.ACTIVEMQ_STOMP_URL?.trim() || 'stomp://admin:admin@127.0.0.1:61614';
export const REQUIRE_BROKERS = process.env.OMNIBUS_REQUIRE_BROKERS === '1';

export async function reachable(url: string, timeoutMs = 1500): Promise<{ ok: boolean; reason: string }> {
  const parsed = parseUrl(url);
  const host = parsed.hosts[0]?.host ?? '127.0.0.1';
  const port = parsed.hosts[0]?.port ?? 61613;
  return new Promise((resolve) => {
    const socket = connect({ host, port });
    const done = (ok: boolean, reason: string) => {
      socket.destroy();
      resolve({ ok, reason });
    };
    socket.setTimeout(timeoutMs, () => done(false, `no answer from ${host}:${port} within ${timeoutMs} ms`));
    socket.once('connect', () => done(true, 'reachable'));
    socket.once('error', (error) => done(false, `${host}:${port}: ${error.message}`));
  });
}

/** TCP, then a STOMP CONNECT: a broker that listens but refuses sessions (booting, broken) is not available. */
async function answers(url: string): Promise<{ ok: boolean; reason: string }> {
  const tcp = await reachable(url);
  if (!tcp.ok) return tcp;
  const parsed = parseUrl(url);
  const session = new StompSession(resolveSettings(parsed, { ...parsed.params, connectTimeoutMs: 5000 }), {
    state: () => undefined,
    error: () => undefined,
  });
  try {
    await session.open();
    return { ok: true, reason: 'answers STOMP' };
  } catch (error) {
    return { ok: false, reason: `${parsed.redacted} refuses STOMP sessions: ${(error as Error).message}` };
  } finally {
    await session.close();
  }
}

/** Fails under OMNIBUS_REQUIRE_BROKERS=1, otherwise prints why the suite is skipped. */
export async function brokerOrSkip(name: string, url: string): Promise<boolean> {
  const { ok, reason } = await answers(url);
  if (ok) return true;
  if (REQUIRE_BROKERS)
    throw new Error(`[stomp tests] ${name} is required (OMNIBUS_REQUIRE_BROKERS=1) but ${reason}`);
  console.warn(`[stomp tests] skipping ${name}: ${reason}`);
  return false;
}

const repoRoot = fileURLToPath(new URL('../../../', import.meta.url));
/** OMNIBUS_BROKERS_SCRIPT points at another checkout's script (until scripts/brokers.sh is on main). */
const script = process.env.OMNIBUS_BROKERS_SCRIPT?.trim() || `${repoRoot}scripts/brokers.sh`;

/** `scripts/brokers.sh restart <broker>`, when the script is there (it comes from the brokers branch). */
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
