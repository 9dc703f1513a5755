/**
 * What the stompit pitfalls and STOMP itself make easy to get wrong, on both brokers:
 * a lost connection in the middle of sends and consumes, an ERROR frame that kills every
 * subscription on the connection (gdaws/stompit#18), heart-beats while a handler is slow
 * (gdaws/stompit#122), and STOMP 1.2 header escaping.
 */

import { monitorEventLoopDelay } from 'node:perf_hooks';
import { waitFor } from '@omnibus/contract';
import { type Bus, ConnectionError, type ConnectionState, connect, parseUrl } from '@omnibus/core';
import { type FaultProxy, restarter, startFaultProxy } from '@omnibus/test-brokers';
import { afterEach, describe, expect, it } from 'vitest';
import { stomp } from '../src/index.js';
import { StompSession } from '../src/session.js';
import { ACTIVEMQ_STOMP_URL, brokerOrSkip, RABBITMQ_STOMP_URL } from './brokers.js';
import { parseOptionsForTest } from './helpers.js';

const targets = [
  { name: 'rabbitmq', url: RABBITMQ_STOMP_URL },
  { name: 'activemq', url: ACTIVEMQ_STOMP_URL },
] as const;

const unique = (suffix: string) => `rel-${Math.random().toString(36).slice(2, 10)}-${suffix}`;

function viaProxy(url: string, proxy: FaultProxy, query = ''): string {
  const u = parseUrl(url);
  const auth =
    u.username === undefined
      ? ''
      : `${encodeURIComponent(u.username)}:${encodeURIComponent(u.password ?? '')}@`;
  return `stomp://${auth}127.0.0.1:${proxy.port}${query}`;
}

for (const target of targets) {
  const available = await brokerOrSkip(`reliability on ${target.name}`, target.url);
  describe.skipIf(!available)(`stomp → ${target.name}: reliability`, () => {
    const open: Bus[] = [];
    const proxies: FaultProxy[] = [];
    const bus = async (url: string, options: Parameters<typeof connect>[1] = {}) => {
      const b = await connect(url, { ...options, adapters: [stomp()] });
      open.push(b);
      return b;
    };
    afterEach(async () => {
      await Promise.allSettled(open.splice(0).map((b) => b.close()));
      await Promise.allSettled(proxies.splice(0).map((p) => p.close()));
    });
    /** Consumes `name` on `consumer` (4 handlers at a time), noting each payload once in the set returned. */
    const distinct = async (consumer: Bus, name: string, prefetch: number) => {
      const seen = new Set<number>();
      await consumer
        .queue<number>(name)
        .consume((m) => void seen.add(m.payload), { concurrency: 4, prefetch });
      return seen;
    };
    const proxy = async () => {
      const u = parseUrl(target.url);
      const p = await startFaultProxy({ host: u.hosts[0]!.host, port: u.hosts[0]!.port ?? 61613 });
      proxies.push(p);
      return p;
    };

    it('a connection cut in the middle of sends and consumes loses no confirmed message', async () => {
      const p = await proxy();
      const client = await bus(viaProxy(target.url, p, '?reconnectDelayMs=50&heartbeatMs=2000'));
      const states: ConnectionState[] = [];
      client.on('state', (s) => states.push(s));
      const name = unique('q');
      const seen = await distinct(client, name, 20);
      const queue = client.queue<number>(name);
      const sends: Promise<unknown>[] = [];
      for (let i = 0; i < 300; i++) {
        sends.push(queue.send(i));
        if (i === 100 || i === 200) {
          await new Promise((resolve) => setTimeout(resolve, 20));
          p.cut();
        }
      }
      const results = await Promise.allSettled(sends);
      expect(results.filter((r) => r.status === 'rejected')).toEqual([]);
      await waitFor(() => seen.size === 300, `300 distinct messages (got ${seen.size})`, 20_000);
      expect(states).toContain('reconnecting');
      await waitFor(() => client.health().state === 'connected', 'reconnection');
      expect(p.accepted).toBeGreaterThanOrEqual(2);
    });

    const restart = restarter(target.name);
    it.skipIf(restart === undefined)(
      'a broker restart in the middle of sends and consumes loses no confirmed message',
      { timeout: 240_000 },
      async () => {
        const producer = await bus(`${target.url}?reconnectDelayMs=100`, {
          sendBuffer: { timeoutMs: 180_000, maxMessages: 10_000 },
        });
        const consumer = await bus(`${target.url}?reconnectDelayMs=100`);
        const name = unique('restart');
        const seen = await distinct(consumer, name, 16);
        const queue = producer.queue<number>(name);
        const total = 400;
        let next = 0;
        let restarting: Promise<void> | undefined;
        const confirmed: number[] = [];
        // Ten sends in flight at a time; the restart starts after 100 confirmations.
        await Promise.all(
          Array.from({ length: 10 }, async () => {
            while (next < total) {
              const n = next++;
              await queue.send(n);
              confirmed.push(n);
              if (confirmed.length === 100) restarting = restart!();
            }
          }),
        );
        await restarting;
        expect(confirmed.length).toBe(total);
        await waitFor(() => seen.size === total, `${total} distinct messages (got ${seen.size})`, 120_000);
      },
    );

    it('a durable subscription gets what was published while its connection was cut', async () => {
      const p = await proxy();
      const subscriber = await bus(viaProxy(target.url, p, '?reconnectDelayMs=50'));
      const publisher = await bus(target.url);
      const name = unique('t');
      const got: string[] = [];
      await subscriber
        .topic<string>(name)
        .subscribe('a.#', (m) => void got.push(m.payload), { durable: unique('d') });
      await publisher.topic<string>(name).publish('before', { subject: 'a.b' });
      await waitFor(() => got.length === 1, 'the first message');
      p.refuse(true);
      p.cut();
      await publisher.topic<string>(name).publish('while cut', { subject: 'a' });
      p.refuse(false);
      // At-least-once: the ACK of 'before' may have been cut off too, and then it comes again.
      await waitFor(
        () => got.includes('while cut'),
        `the message published while cut (got ${got.join(', ')})`,
        20_000,
      );
      expect([...new Set(got)]).toEqual(['before', 'while cut']);
    });

    it.skipIf(target.name !== 'rabbitmq')(
      'a log reader and an appender carry on across a cut connection, in order',
      async () => {
        const p = await proxy();
        const reader = await bus(viaProxy(target.url, p, '?reconnectDelayMs=50'));
        const appender = await bus(viaProxy(target.url, p, '?reconnectDelayMs=50'));
        const name = unique('log');
        const got: { n: number; offset: number }[] = [];
        await reader
          .log<number>(name)
          .read((m) => void got.push({ n: m.payload, offset: m.position!.offset }), { from: 'earliest' });
        const log = appender.log<number>(name);
        const offsets: number[] = [];
        for (let n = 0; n < 60; n++) {
          offsets.push((await log.append(n)).position.offset);
          if (n === 20 || n === 40) p.cut();
        }
        // Positions increase (an append whose receipt was cut off is appended again: at-least-once).
        for (let i = 1; i < offsets.length; i++) expect(offsets[i]!).toBeGreaterThan(offsets[i - 1]!);
        await waitFor(
          () => new Set(got.map((g) => g.n)).size === 60,
          `60 distinct entries (got ${got.length})`,
          20_000,
        );
        // The reader never goes back: offsets strictly increase across its reconnections.
        for (let i = 1; i < got.length; i++) expect(got[i]!.offset).toBeGreaterThan(got[i - 1]!.offset);
        const firstSeen = [...new Map(got.map((g) => [g.n, g.offset])).keys()];
        expect(firstSeen).toEqual([...Array(60).keys()]);
      },
    );

    it('a second subscriber of one durable subscription: refused at once on ActiveMQ, competing on RabbitMQ', async () => {
      const client = await bus(target.url);
      const topic = client.topic<string>(unique('t'));
      const durable = unique('d');
      await topic.subscribe('#', () => undefined, { durable });
      const started = Date.now();
      const second = topic
        .subscribe('#', () => undefined, { durable })
        .then(
          () => undefined,
          (error: unknown) => error,
        );
      if (target.name === 'activemq') {
        const error = await second;
        expect(error).toBeInstanceOf(ConnectionError);
        expect((error as ConnectionError).retriable).toBe(false);
        expect((error as Error).message).toMatch(/already connected/);
        expect(Date.now() - started).toBeLessThan(5000);
      } else {
        expect(await second).toBeUndefined();
      }
    });

    it('a SUBSCRIBE the broker refuses fails alone, its connection closed; other connections carry on', async () => {
      const settings = parseOptionsForTest(target.url);
      const states: string[] = [];
      const received: string[] = [];
      const good = `/queue/${unique('good')}`;
      const session = new StompSession(
        settings,
        { state: (s) => states.push(s), error: () => undefined },
        {
          what: 'the good queue',
          headers: () => ({ destination: good, ack: 'auto' }),
          message: (_h, body) => received.push(body.toString()),
        },
      );
      await session.open();
      try {
        // Heart-beats are negotiated (both sides non-zero), not left at STOMP's 0,0.
        expect(session.connected['heart-beat']).toMatch(/^[1-9]\d*,[1-9]\d*$/);
        let bad: Record<string, string>;
        if (target.name === 'rabbitmq') {
          // A queue declared with one priority range, subscribed with another: PRECONDITION_FAILED.
          const q = `/queue/${unique('prio')}`;
          await session.send(
            { destination: q, 'x-max-priority': '9', 'content-length': 1 },
            Buffer.from('x'),
            'q',
          );
          bad = { destination: q, ack: 'auto', 'x-max-priority': '3' };
        } else {
          bad = { destination: `/queue/${unique('sel')}`, ack: 'auto', selector: 'a = = 1' };
        }
        const ignore = () => undefined;
        const refused = new StompSession(
          settings,
          { state: ignore, error: ignore },
          { what: 'the bad one', headers: () => bad, message: ignore },
        );
        const error = await refused.open().then(ignore, (e: unknown) => e);
        expect(error).toBeInstanceOf(ConnectionError);
        expect((error as ConnectionError).retriable).toBe(false);
        expect((error as Error).message).toMatch(/refused the subscription to the bad one/);
        expect(refused.closed).toBe(true);
        await session.send({ destination: good, 'content-length': 5 }, Buffer.from('still'), 'good');
        await waitFor(() => received.length === 1, 'the good subscription to deliver after the ERROR');
        expect(received).toEqual(['still']);
        expect(states).toEqual([]);
      } finally {
        await session.close();
      }
    });

    it('heart-beats keep the connection while a handler is slow, and nothing is redelivered', async () => {
      // Margins from what this machine does now, not from an idle one: the heart-beat is well above
      // the event loop's current delays, and the handler stays busy for several heart-beats.
      const lag = monitorEventLoopDelay({ resolution: 10 });
      lag.enable();
      await new Promise((resolve) => setTimeout(resolve, 500));
      const heartbeatMs = Math.max(500, Math.ceil((4 * lag.max) / 1e6));
      const slowMs = 6 * heartbeatMs;
      lag.reset();
      const client = await bus(`${target.url}?heartbeatMs=${heartbeatMs}`);
      const states: ConnectionState[] = [];
      client.on('state', (s) => states.push(s));
      const queue = client.queue<number>(unique('hb'));
      for (let i = 0; i < 6; i++) await queue.send(i);
      const deliveries: string[] = [];
      await queue.consume(
        async (m) => {
          deliveries.push(`${m.payload}@${m.attempt}${m.redelivered ? 'r' : ''}`);
          if (m.payload === 0) await new Promise((resolve) => setTimeout(resolve, slowMs));
        },
        { concurrency: 1, prefetch: 6 },
      );
      await waitFor(() => deliveries.length === 6, '6 deliveries', slowMs + 15_000);
      lag.disable();
      const context = `heart-beat ${heartbeatMs} ms, event loop stalled up to ${Math.round(lag.max / 1e6)} ms`;
      expect(deliveries, context).toEqual(['0@1', '1@1', '2@1', '3@1', '4@1', '5@1']);
      expect(states, context).toEqual([]);
    });

    it('STOMP 1.2 escaping: header values and broker-reserved names round-trip exactly; binary bodies stay whole', async () => {
      const client = await bus(target.url);
      const queue = client.queue<Uint8Array>(unique('esc'), { codec: 'bytes' });
      const got: { headers: Record<string, string>; payload: Uint8Array }[] = [];
      await queue.consume((m) => void got.push({ headers: { ...m.headers }, payload: m.payload }));
      const headers = {
        colon: 'a:b::c',
        newline: 'line1\nline2\r\nline3',
        backslash: 'C:\\path\\to\\file',
        mixed: '\\n is not a newline: \\c',
        priority: 'urgent',
        expires: 'never',
        destination: '/queue/elsewhere',
        'content-type': 'text/x-app',
        persistent: 'maybe',
        JMSType: 'app-type',
        'x-max-priority': '200',
        AMQ_SCHEDULED_DELAY: '60000',
        subscription: 'mine',
        'x-request-id': 'r-1',
      };
      const body = Uint8Array.from([0, 0, 10, 0, 255, 0, 13, 10, 0]);
      const sentAt = Date.now();
      await queue.send(body, { headers });
      await waitFor(() => got.length === 1, 'the message');
      expect(Date.now() - sentAt).toBeLessThan(5000);
      expect(got[0]!.headers).toEqual(headers);
      expect(Array.from(got[0]!.payload)).toEqual(Array.from(body));
    });
  });
}
