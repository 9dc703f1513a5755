/**
 * Is ActiveMQ's scheduler on? With `schedulerSupport` off, ActiveMQ ignores `AMQ_SCHEDULED_DELAY`
 * and delivers at once, so the header alone proves nothing: send a delayed message to a temporary
 * queue and see when it arrives. Asked once per broker address in a process, on a connection of its
 * own (a temporary queue belongs to the connection that uses it).
 */
import { randomUUID } from 'node:crypto';
import { KeyedOnce, withTimeout } from '@omnibus/core';
import type { StompSettings } from './options.js';
import { StompSession } from './session.js';

const PROBE_DELAY_MS = 300;
/** Answers per broker address; a failed probe is asked again next time. */
const known = new KeyedOnce<boolean>();

export function probeScheduler(settings: StompSettings): Promise<boolean> {
  const key = settings.hosts.map((h) => `${h.host}:${h.port ?? ''}`).join(',');
  return known.run(key, () => probe(settings));
}

async function probe(settings: StompSettings): Promise<boolean> {
  const destination = `/temp-queue/omnibus-scheduler-probe-${randomUUID()}`;
  let arrived: (at: number) => void = () => undefined;
  const arrival = new Promise<number>((resolve) => {
    arrived = resolve;
  });
  const what = 'the scheduler probe';
  const ignore = () => undefined;
  const session = new StompSession(
    settings,
    { state: ignore, error: ignore },
    { what, headers: () => ({ destination, ack: 'auto' }), message: () => arrived(Date.now()) },
  );
  await session.open();
  try {
    const sentAt = Date.now();
    const headers = { destination, AMQ_SCHEDULED_DELAY: String(PROBE_DELAY_MS), 'content-length': 0 };
    await session.send(headers, new Uint8Array(0), what);
    const waitMs = Math.max(settings.operationTimeoutMs, 2000);
    const at = await withTimeout(arrival, waitMs, () => new Error(`${what} did not arrive`)).catch(ignore);
    return at !== undefined && at - sentAt >= PROBE_DELAY_MS * 0.7;
  } finally {
    await session.close();
  }
}
