/**
 * Is ActiveMQ's scheduler on? With `schedulerSupport` off, ActiveMQ ignores `AMQ_SCHEDULED_DELAY`
 * and delivers at once, so the header alone proves nothing: send a delayed message to a temporary
 * queue and see when it arrives. Asked once per broker address in a process.
 */
import type { StompSettings } from './options.js';
import { type StompSession, sleep } from './session.js';

const PROBE_DELAY_MS = 300;
const known = new Map<string, Promise<boolean>>();

export function probeScheduler(session: StompSession, settings: StompSettings): Promise<boolean> {
  const key = settings.hosts.map((h) => `${h.host}:${h.port ?? ''}`).join(',');
  let answer = known.get(key);
  if (answer === undefined) {
    answer = probe(session, settings.operationTimeoutMs);
    known.set(key, answer);
    answer.catch(() => known.delete(key));
  }
  return answer;
}

async function probe(session: StompSession, timeoutMs: number): Promise<boolean> {
  const id = session.newId('scheduler-probe');
  const destination = `/temp-queue/omnibus-${id}`;
  let arrived: (at: number) => void = () => undefined;
  const arrival = new Promise<number>((resolve) => {
    arrived = resolve;
  });
  await session.subscribe({
    id,
    what: 'the scheduler probe',
    headers: () => ({ destination, ack: 'auto' }),
    message: () => arrived(Date.now()),
    failed: () => undefined,
  });
  try {
    const sentAt = Date.now();
    await session.send(
      { destination, AMQ_SCHEDULED_DELAY: String(PROBE_DELAY_MS), 'content-length': 0 },
      new Uint8Array(0),
      'the scheduler probe',
    );
    const at = await Promise.race([arrival, sleep(Math.max(timeoutMs, 2000)).then(() => undefined)]);
    return at !== undefined && at - sentAt >= PROBE_DELAY_MS * 0.7;
  } finally {
    await session.unsubscribe(id);
  }
}
