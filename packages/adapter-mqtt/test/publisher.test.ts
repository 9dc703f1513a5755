// The publishing connection's bounds (PITFALLS.md: mqtt.js's offline queue is unbounded and floods
// on reconnect), against the real broker.
import {
  type AdapterContext,
  CapacityError,
  ConnectionError,
  type ConnectionState,
  PublishError,
  parseUrl,
} from '@omnibus/core';
import type { Packet } from 'mqtt';
import { afterEach, describe, expect, it } from 'vitest';
import { resolveOptions } from '../src/options.js';
import { Publisher } from '../src/publisher.js';
import { MQTT_URL, mosquittoAvailable } from './broker.js';

const available = await mosquittoAvailable();
if (!available.ok) console.warn(`[mqtt] skipping publisher tests: ${available.reason}`);

const states: ConnectionState[] = [];
const context: AdapterContext = {
  clientId: `pubtest-${Math.random().toString(36).slice(2, 10)}`,
  logger: { debug() {}, info() {}, warn() {}, error() {} },
  setState: (state) => states.push(state),
  reportError: () => undefined,
};
const open: Publisher[] = [];

async function publisher(query: string): Promise<Publisher> {
  const url = parseUrl(`${MQTT_URL}${MQTT_URL.includes('?') ? '&' : '?'}${query}`);
  const p = new Publisher(
    resolveOptions(url, {}, { ...url.params }),
    `${context.clientId}-${open.length}`,
    context,
    url.redacted,
  );
  open.push(p);
  await p.connect();
  return p;
}

afterEach(async () => {
  await Promise.all(open.splice(0).map((p) => p.close()));
});

describe.skipIf(!available.ok)('mqtt publisher', () => {
  it('keeps at most maxInflight publishes awaiting their PUBACK', async () => {
    const p = await publisher('maxInflight=4');
    let outstanding = 0;
    let peak = 0;
    p.client.on('packetsend', (packet: Packet) => {
      if (packet.cmd === 'publish') peak = Math.max(peak, ++outstanding);
    });
    p.client.on('packetreceive', (packet: Packet) => {
      if (packet.cmd === 'puback') outstanding--;
    });
    await Promise.all(
      Array.from({ length: 50 }, (_, i) => p.publish(`omnibus-test/inflight/${i}`, Buffer.from('x'), 1)),
    );
    expect(peak).toBeLessThanOrEqual(4);
    expect(peak).toBeGreaterThan(1);
  });

  it('refuses publishes beyond maxPendingPublishes with CapacityError', async () => {
    const p = await publisher('maxInflight=1&maxPendingPublishes=5');
    const results = await Promise.allSettled(
      Array.from({ length: 20 }, () => p.publish('omnibus-test/pending', Buffer.from('x'), 1)),
    );
    const refused = results.filter((r) => r.status === 'rejected');
    expect(refused.length).toBe(14);
    for (const r of refused) expect((r as PromiseRejectedResult).reason).toBeInstanceOf(CapacityError);
  });

  it('while disconnected, fails retriably at once and leaves mqtt.js no offline queue to flood', async () => {
    const p = await publisher('reconnectPeriodMs=500');
    const inFlight = p.publish('omnibus-test/offline', Buffer.from('in flight'), 1);
    p.client.stream.destroy();
    await new Promise<void>((resolve) => p.client.once('close', () => resolve()));
    const error = await p.publish('omnibus-test/offline', Buffer.from('later'), 1).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ConnectionError);
    expect((error as ConnectionError).retriable).toBe(true);
    // The unconfirmed one fails retriably too (core sends it again) instead of being resent by mqtt.js.
    const lost = await inFlight.then(
      () => undefined,
      (e: unknown) => e,
    );
    if (lost !== undefined) expect((lost as ConnectionError).retriable).toBe(true);
    expect(p.client.queue.length).toBe(0);
    expect(Object.keys(p.client.outgoing)).toEqual([]);
    expect(states).toContain('reconnecting');
    await new Promise((resolve) => p.client.once('connect', resolve));
    await p.publish('omnibus-test/offline', Buffer.from('back'), 1);
    expect(states.at(-1)).toBe('connected');
  });

  it('a field mqtt-packet cannot encode fails with PublishError and does not wedge the connection', async () => {
    // PITFALLS.md: a user property over 65,535 bytes makes mqtt-packet throw mid-write.
    const p = await publisher('reconnectPeriodMs=200');
    const huge = { userProperties: { big: 'x'.repeat(70_000) } };
    const error = await p.publish('omnibus-test/huge', Buffer.from('x'), 1, huge).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(PublishError);
    const startedAt = Date.now();
    for (;;) {
      // The connection is dropped and comes back; meanwhile a publish fails retriably (core waits).
      const result = await p.publish('omnibus-test/huge', Buffer.from('next'), 1).then(
        () => 'ok',
        (e: unknown) => e,
      );
      if (result === 'ok') break;
      expect((result as ConnectionError).retriable).toBe(true);
      expect(Date.now() - startedAt).toBeLessThan(5000);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  });
});
