/**
 * A connection reset in the middle of a fetch response, through a fault proxy (the shared broker
 * is not touched). kafkajs keeps the half-received response and, without the adapter's whole-frame
 * sockets, misreads every later response on that connection: the consumer rejoins but delivers
 * nothing more. Also: a reset is reported as `reconnecting`, then `connected`.
 *
 * Kafka clients connect to the addresses the cluster advertises, not to the bootstrap list, so
 * `node:net`'s `connect` is redirected to the proxy while the test runs (as test/faults/harness.ts
 * does); the proxy's own upstream connection, made with the endpoint object it was started with,
 * goes to the broker.
 */
import { waitFor } from '@omnibus/contract';
import { type Adapter, type AdapterContext, type ConnectionState, HEADER, parseUrl } from '@omnibus/core';
import { redirectConnections, startFaultProxy } from '@omnibus/test-brokers';
import { describe, expect, it } from 'vitest';
import { kafka } from '../../src/index.js';
import { KAFKA_BROKERS, kafkaUrl, uniqueName } from '../helpers.js';

/** Large enough that a fetch response spans several socket reads, so one can be cut in half. */
const BODY_BYTES = 20_000;
const MESSAGES = 150;

export function connectionResetTests(): void {
  describe('kafka connection reset mid-response', () => {
    it('the consumer goes on delivering, and the reset is reported', async () => {
      const name = uniqueName('reset');
      // The backlog is written straight to the broker, before the proxy is in the way.
      const producer = await adapterFor('reset-producer');
      try {
        for (let i = 0; i < MESSAGES; i++) {
          const body = new Uint8Array(BODY_BYTES).fill(i % 256);
          await producer.adapter.send!({ name }, message(`m${i}`, body));
        }
      } finally {
        await producer.adapter.close();
      }

      const [host, port] = KAFKA_BROKERS[0]!.split(':');
      const broker = { host: host!, port: Number(port) };
      const proxy = await startFaultProxy(broker);
      const restore = redirectConnections([{ from: broker, to: proxy }]);
      const consumer = await adapterFor('reset-consumer');
      try {
        const seen = new Set<string>();
        let slow = true;
        const subscription = await consumer.adapter.consume!({ name }, { prefetch: 10 }, async (delivery) => {
          // Each stored message once: its envelope id (`m<i>`, the header core reads first).
          seen.add(String(delivery.headers[HEADER.id]));
          // Slow at first, so the backlog is still being fetched when the reset comes.
          if (slow) await new Promise((resolve) => setTimeout(resolve, 20));
          await delivery.ack();
        });
        await waitFor(() => seen.size >= 10, 'the first deliveries', 30_000);
        const before = consumer.states.length;
        await proxy.resetMidReply(BODY_BYTES);
        slow = false;
        const cutAt = seen.size;
        expect(cutAt, 'the reset came before the end of the backlog').toBeLessThan(MESSAGES);
        // Without whole frames this never completes: every fetch after the reset times out.
        await waitFor(
          () => seen.size === MESSAGES,
          `all ${MESSAGES} messages (had ${cutAt} at the reset)`,
          30_000,
        );
        const after = consumer.states.slice(before);
        expect(after, 'state changes after the reset').toContain('reconnecting');
        await waitFor(() => consumer.states.at(-1) === 'connected', 'connected again', 15_000);
        await subscription.close();
      } finally {
        await consumer.adapter.close();
        restore();
        await proxy.close();
      }
    }, 120_000);
  });
}

async function adapterFor(clientId: string): Promise<{ adapter: Adapter; states: ConnectionState[] }> {
  const states: ConnectionState[] = [];
  const context: AdapterContext = {
    clientId,
    logger: { debug() {}, info() {}, warn() {}, error() {} },
    setState: (state) => void states.push(state),
    reportError: () => undefined,
  };
  // Test timings plus a short request timeout, so a failed run ends in seconds rather than minutes.
  const url = parseUrl(kafkaUrl());
  const adapter = await kafka().create(
    { url, options: { ...url.params, requestTimeoutMs: 3000, retries: 2, logLevel: 'nothing' } },
    context,
  );
  return { adapter, states };
}

function message(id: string, body: Uint8Array) {
  return { id, body, headers: {}, contentType: 'application/octet-stream', timestamp: Date.now() };
}
