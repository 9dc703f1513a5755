// One test per mqtt.js / Mosquitto pitfall of PITFALLS.md that applies to this adapter, against the
// real broker, for MQTT 5 and 3.1.1.

import { waitFor } from '@omnibus/contract';
import {
  type Bus,
  type ConnectOptions,
  connect,
  parseUrl,
  UnsupportedCapabilityError,
  ValidationError,
} from '@omnibus/core';
import mqttjs from 'mqtt';
import { describe, expect, it } from 'vitest';
import { type Ack, Receiver } from '../src/client.js';
import { mqtt } from '../src/index.js';
import { resolveOptions } from '../src/options.js';
import { MQTT_URL, mosquittoAvailable, withQuery } from './broker.js';

const available = await mosquittoAvailable();
if (!available.ok) console.warn(`[mqtt] skipping pitfall tests: ${available.reason}`);

const unique = (what: string) => `pit-${Math.random().toString(36).slice(2, 10)}-${what}`;

for (const version of [5, 4] as const) {
  describe.skipIf(!available.ok)(`mqtt pitfalls (MQTT ${version === 5 ? '5' : '3.1.1'})`, () => {
    const buses: Bus[] = [];
    const open = async (query = '', options: ConnectOptions = {}) => {
      const bus = await connect(withQuery(`protocolVersion=${version}&sessionExpirySec=3600${query}`), {
        ...options,
        adapters: [mqtt()],
      });
      buses.push(bus);
      return bus;
    };
    const closeAll = () => Promise.allSettled(buses.splice(0).map((b) => b.close()));

    it('a handler that sends with QoS 1 and awaits the PUBACK does not deadlock (separate connections)', async () => {
      try {
        const bus = await open();
        const first = bus.queue<number>(unique('a'));
        const second = bus.queue<number>(unique('b'));
        const got: number[] = [];
        await second.consume((m) => void got.push(m.payload));
        await first.consume(async (m) => {
          await second.send(m.payload * 10);
        });
        for (let i = 1; i <= 5; i++) await first.send(i);
        await waitFor(() => got.length === 5, 'five forwarded messages', 5000);
        expect(got.sort((a, b) => a - b)).toEqual([10, 20, 30, 40, 50]);
      } finally {
        await closeAll();
      }
    });

    it('a header over 64 KiB is refused with ValidationError and the next send goes through promptly', async () => {
      try {
        const bus = await open();
        const queue = bus.queue<string>(unique('big-header'));
        const got: string[] = [];
        await queue.consume((m) => void got.push(m.payload));
        const error = await queue
          .send('big', { headers: { big: 'x'.repeat(70_000) } })
          .catch((e: unknown) => e);
        // MQTT 5: maxHeaderBytes (a user property is a 16-bit length-prefixed string); 3.1.1: no headers.
        expect(error).toBeInstanceOf(version === 5 ? ValidationError : UnsupportedCapabilityError);
        const startedAt = Date.now();
        await queue.send('next');
        expect(Date.now() - startedAt).toBeLessThan(2000);
        await waitFor(() => got.includes('next'), 'the next message', 5000);
      } finally {
        await closeAll();
      }
    });

    it('a handler longer than the keepalive neither loses the connection nor gets its message twice', async () => {
      try {
        const bus = await open('&keepaliveSec=1');
        const queue = bus.queue<string>(unique('slow'));
        const seen: string[] = [];
        await queue.consume(
          async (m) => {
            seen.push(m.payload);
            if (m.payload === 'slow') await new Promise((resolve) => setTimeout(resolve, 3500));
          },
          { concurrency: 2 },
        );
        await queue.send('slow');
        await queue.send('fast');
        await waitFor(() => seen.includes('fast'), 'the message behind the slow one', 2000);
        await new Promise((resolve) => setTimeout(resolve, 4000));
        expect(seen.sort()).toEqual(['fast', 'slow']);
      } finally {
        await closeAll();
      }
    }, 20_000);

    it('the PUBACK leaves only when told (after the handler): an unacked message comes back, an acked one does not', async () => {
      const parsed = parseUrl(withQuery(`protocolVersion=${version}`));
      const options = resolveOptions(parsed, {}, { ...parsed.params });
      const clientId = unique('receiver');
      const topic = `omnibus-test/${unique('t')}`;
      const received: { payload: string; dup: boolean; ack: Ack }[] = [];
      const open1 = () =>
        new Receiver(
          options,
          { clientId, persistent: true },
          (packet, ack) => received.push({ payload: packet.payload.toString(), dup: packet.dup, ack }),
          () => undefined,
        );
      const raw = await mqttjs.connectAsync(MQTT_URL, { protocolVersion: version, clientId: unique('raw') });
      try {
        let receiver = open1();
        await receiver.connect(MQTT_URL);
        await receiver.client.subscribeAsync(topic, { qos: 1 });
        await raw.publishAsync(topic, 'one', { qos: 1 });
        await raw.publishAsync(topic, 'two', { qos: 1 });
        await waitFor(() => received.length === 2, 'two messages');
        await received[1]!.ack.ack(); // 'two' handled; 'one' still running when the process "dies"
        await receiver.flushed();
        // A written PUBACK may still sit in the socket's buffer: let it leave, then cut the line.
        await new Promise((resolve) => setTimeout(resolve, 200));
        await receiver.client.endAsync(true);
        received.length = 0;
        receiver = open1();
        await receiver.connect(MQTT_URL);
        await waitFor(() => received.length >= 1, 'the unacknowledged message again');
        await new Promise((resolve) => setTimeout(resolve, 300));
        expect(received.map((r) => [r.payload, r.dup])).toEqual([['one', true]]);
        await received[0]!.ack.ack();
        await receiver.flushed();
        await receiver.client.endAsync(false, { properties: { sessionExpiryInterval: 0 } });
        if (version === 4) {
          const wipe = await mqttjs.connectAsync(MQTT_URL, { protocolVersion: 4, clientId, clean: true });
          await wipe.endAsync();
        }
      } finally {
        await raw.endAsync();
      }
    });

    it('a consumer that closes leaves no share-group member behind: the other one gets every message at once', async () => {
      try {
        // holderCheckMs=0: no sweeping, so a stalled share would show.
        const clientId = unique('bus');
        const bus = await open('&holderCheckMs=0', { clientId });
        const name = unique('q');
        const a: number[] = [];
        const b: number[] = [];
        const consumerA = await bus.queue<number>(name).consume((m) => void a.push(m.payload));
        await bus.queue<number>(name).consume((m) => void b.push(m.payload));
        await consumerA.close();
        // Sent from the consumers' bus: on 3.1.1 another bus would provision a holder first (it
        // cannot know consumers exist), and without sweeping its share would wait — see README.
        for (let i = 0; i < 20; i++) await bus.queue<number>(name).send(i);
        await waitFor(() => b.length === 20, `20 messages on the remaining consumer (got ${b.length})`, 3000);
        expect(a).toEqual([]);
        // Its session is gone: connecting with its client id finds none.
        const probe = mqttjs.connect(MQTT_URL, {
          protocolVersion: version,
          clientId: `${clientId}:q:${name}:0`,
          clean: false,
          ...(version === 5 ? { properties: { sessionExpiryInterval: 0 } } : {}),
        });
        const connack = await new Promise<mqttjs.IConnackPacket>((resolve) => probe.once('connect', resolve));
        expect(connack.sessionPresent).toBe(false);
        await probe.endAsync();
        if (version === 4) {
          const wipe = await mqttjs.connectAsync(MQTT_URL, {
            protocolVersion: 4,
            clientId: probe.options.clientId!,
            clean: true,
          });
          await wipe.endAsync();
        }
      } finally {
        await closeAll();
      }
    });

    it('a durable subscription is one session: a second one in this process is refused', async () => {
      try {
        const bus = await open();
        const topic = bus.topic(unique('t'));
        const durable = unique('d');
        await topic.subscribe('#', () => undefined, { durable });
        await expect(topic.subscribe('#', () => undefined, { durable })).rejects.toThrow(ValidationError);
      } finally {
        await closeAll();
      }
    });

    it('a durable session taken over by another connection is reported, not fought over', async () => {
      try {
        const bus = await open();
        const errors: string[] = [];
        bus.on('error', (error) => errors.push(error.message));
        const name = unique('t');
        const durable = unique('d');
        await bus.topic(name).subscribe('#', () => undefined, { durable });
        const thief = await mqttjs.connectAsync(MQTT_URL, {
          protocolVersion: version,
          clientId: `omnibus-durable:${name}:${durable}`,
          clean: true,
        });
        // Mosquitto 2.0.11 closes the old connection without a reason: the fight is what shows.
        await waitFor(() => errors.some((e) => /taken over/.test(e)), 'the takeover report', 15_000);
        // No reconnect loop any more: the thief keeps its connection.
        await new Promise((resolve) => setTimeout(resolve, 2500));
        expect(thief.connected).toBe(true);
        await thief.endAsync();
      } finally {
        await closeAll();
      }
    }, 30_000);

    it.skipIf(version === 5)(
      'a key on a 3.1.1 topic without the envelope is refused, not dropped',
      async () => {
        try {
          const bus = await open();
          await expect(bus.topic(unique('t')).publish('x', { subject: 's', key: 'k' })).rejects.toThrow(
            UnsupportedCapabilityError,
          );
          const enveloped = await open('&envelope=true');
          const topic = enveloped.topic<string>(unique('t'));
          const keys: (string | undefined)[] = [];
          await topic.subscribe('#', (m) => void keys.push(m.key));
          await topic.publish('x', { subject: 's', key: 'k' });
          await waitFor(() => keys.length === 1, 'the keyed message');
          expect(keys).toEqual(['k']);
        } finally {
          await closeAll();
        }
      },
    );

    it('messages from and to plain MQTT clients: raw payloads, subjects from topic levels', async () => {
      const raw = await mqttjs.connectAsync(MQTT_URL, { protocolVersion: version, clientId: unique('raw') });
      try {
        const bus = await open();
        const name = unique('t');
        const got: { payload: unknown; subject: string | undefined }[] = [];
        await bus
          .topic(name)
          .subscribe('sensors.*', (m) => void got.push({ payload: m.payload, subject: m.subject }));
        await raw.publishAsync(`${name}/sensors/kitchen`, JSON.stringify({ celsius: 21 }), { qos: 1 });
        await waitFor(() => got.length === 1, 'the raw message');
        expect(got[0]).toEqual({ payload: { celsius: 21 }, subject: 'sensors.kitchen' });
        const seen: string[] = [];
        raw.on('message', (_topic, payload) => seen.push(payload.toString()));
        await raw.subscribeAsync(`${name}/out`, { qos: 1 });
        await bus.topic(name).publish({ hello: 'device' }, { subject: 'out' });
        await waitFor(() => seen.length === 1, 'the message on the raw client');
        expect(JSON.parse(seen[0]!)).toEqual({ hello: 'device' });
      } finally {
        await raw.endAsync();
        await closeAll();
      }
    });
  });
}
