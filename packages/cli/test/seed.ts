/** Dead letters made with the SDK, for the `omnibus dlq` commands to find. */
import type { Bus } from '@omnibus/core';

/**
 * Sends each payload to `queue` and fails it once (`maxAttempts` 1), with the payload as the
 * failure's message, so each becomes a dead letter in `<queue>.dlq`; resolves with the ids in order.
 */
export async function seedDeadLetters(
  bus: Bus,
  queue: string,
  payloads: readonly string[],
  timeoutMs: number,
) {
  const handle = bus.queue<string>(queue, { maxAttempts: 1 });
  let dead = 0;
  const all = new Promise<void>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`${dead} of ${payloads.length} dead letters within ${timeoutMs} ms`)),
      timeoutMs,
    );
    bus.on('deadLetter', () => {
      if (++dead === payloads.length) {
        clearTimeout(timer);
        resolve();
      }
    });
  });
  const ids: string[] = [];
  for (const payload of payloads) ids.push((await handle.send(payload, { headers: { tenant: 'acme' } })).id);
  const consumer = await handle.consume(
    (m) => {
      throw new Error(m.payload);
    },
    { concurrency: 1 },
  );
  try {
    await all;
  } finally {
    await consumer.close();
  }
  return ids;
}
