/**
 * The `omnibus` binary against each real broker, as a user runs it: caps, check, a send/consume
 * round trip, tailing a topic with a pattern (subscribe first, then publish from another process),
 * and append/read where the broker has logs (where it has none, append exits 3).
 */
import { randomBytes } from 'node:crypto';
import { type BrokerName, brokerAvailable, brokerUrls } from '@omnibus/test-brokers';
import { beforeAll, describe, expect, it } from 'vitest';
import { ensureBuilt, jsonLines, omnibus, start } from './omnibus.js';

const urls = brokerUrls();
const families: readonly { readonly broker: BrokerName; readonly url: string; readonly adapter: string }[] = [
  { broker: 'rabbitmq', url: urls.amqp, adapter: 'rabbitmq' },
  { broker: 'kafka', url: `kafka://${urls.kafkaBrokers.join(',')}`, adapter: 'kafka' },
  { broker: 'mosquitto', url: urls.mqtt, adapter: 'mqtt' },
  { broker: 'rabbitmq-stomp', url: urls.stomp, adapter: 'stomp' },
  { broker: 'activemq', url: urls.activemqStomp, adapter: 'stomp' },
];

beforeAll(ensureBuilt, 240_000);

/** Kafka joins consumer groups in seconds, not milliseconds: every wait below allows for it. */
const WAIT_MS = 30_000;
const unique = (what: string) => `cli-${what}-${randomBytes(4).toString('hex')}`;
const password = (url: string) => /^[a-z]+:\/\/[^:/]+:([^@]+)@/.exec(url)?.[1];

interface Caps {
  readonly url: string;
  readonly adapter: string;
  readonly capabilities: Record<string, string>;
}

for (const family of families) {
  const available = await brokerAvailable(family.broker);
  if (!available.ok) console.warn(`skipping omnibus CLI on ${family.broker}: ${available.reason}`);

  describe.skipIf(!available.ok)(`omnibus on ${family.broker}`, () => {
    const env = { BROKER_URL: family.url };
    let caps: Caps;

    beforeAll(async () => {
      const result = await omnibus(['caps', '--json'], { env });
      expect(result.code, result.stderr).toBe(0);
      caps = JSON.parse(result.stdout) as Caps;
    }, WAIT_MS);

    it('caps: the adapter, its capabilities, and no password', async () => {
      expect(caps.adapter).toBe(family.adapter);
      expect(caps.capabilities.queue).toMatch(/native|emulated/);
      const table = await omnibus(['caps', family.url]);
      expect(table.code).toBe(0);
      expect(table.stdout).toMatch(/durableSubscriptions\s+(native|emulated|none)/);
      const secret = password(family.url);
      if (secret !== undefined) {
        expect(caps.url).toContain(':***@');
        expect(table.stdout + table.stderr + JSON.stringify(caps)).not.toContain(`:${secret}@`);
      }
    });

    it('check: every claimed capability holds, every none throws', async () => {
      const { code, stdout, stderr } = await omnibus(['check', '--json'], { env, timeoutMs: 120_000 });
      const report = JSON.parse(stdout) as { ok: boolean; results: { feature: string; status: string }[] };
      expect(
        report.results.filter((r) => r.status === 'fails'),
        stderr,
      ).toEqual([]);
      expect(code).toBe(0);
      for (const r of report.results) {
        expect(r.status).toEqual(
          caps.capabilities[r.feature] === 'none' ? expect.stringMatching(/denied|unchecked/) : 'holds',
        );
      }
    }, 130_000);

    it(
      'check --requires: what the broker lacks exits 3',
      async () => {
        const lacking = Object.keys(caps.capabilities).find((f) => caps.capabilities[f] === 'emulated');
        const feature = lacking ?? 'queue';
        const { code, stdout } = await omnibus(['check', '--requires', `${feature}=native`], {
          env,
          timeoutMs: 60_000,
        });
        if (lacking === undefined) expect(code).toBe(0);
        else {
          expect(code).toBe(3);
          expect(stdout).toContain(`missing for --requires: ${feature} (needs native, has emulated)`);
        }
      },
      WAIT_MS * 2,
    );

    it(
      'send then consume: the message, its id, key and headers; acked, so a second consume gets nothing',
      async () => {
        const queue = unique('q');
        const headers = caps.capabilities.headers === 'none' ? [] : ['--header', 'tenant=acme'];
        const sent = await omnibus(['send', queue, '{"id":"A-1","total":42}', '--key', 'A-1', ...headers], {
          env,
        });
        expect(sent.code, sent.stderr).toBe(0);
        const id = sent.stdout.trim();
        expect(id).toMatch(/^\S+$/);
        const lines = await omnibus(['send', queue, '--lines'], { env, input: 'two\n\n{"n":3}\n' });
        expect(lines.code, lines.stderr).toBe(0);
        expect(lines.stdout.trim().split('\n')).toHaveLength(2);

        const got = await omnibus(['consume', queue, '--count', '3', '--timeout', String(WAIT_MS)], {
          env,
          timeoutMs: WAIT_MS * 2,
        });
        expect(got.code, got.stderr).toBe(0);
        const messages = jsonLines(got.stdout);
        expect(messages.map((m) => m.payload)).toEqual([{ id: 'A-1', total: 42 }, 'two', { n: 3 }]);
        expect(messages[0]).toMatchObject({ id, key: 'A-1', destination: queue, attempt: 1 });
        if (headers.length > 0) expect(messages[0]?.headers).toEqual({ tenant: 'acme' });
        expect(messages[1]?.contentType).toMatch(/^text\/plain/);

        const again = await omnibus(['consume', queue, '--count', '1', '--timeout', '1500'], { env });
        expect(again.code).toBe(5);
        expect(again.stdout).toBe('');
      },
      WAIT_MS * 3,
    );

    it(
      'subscribe with a pattern, then publish from another process: only the matching message',
      async () => {
        const topic = unique('t');
        const tail = start(
          ['subscribe', topic, 'orders.*.created', '--count', '1', '--timeout', String(WAIT_MS)],
          { env, timeoutMs: WAIT_MS * 2 },
        );
        await tail.waitForStderr(/^ready: subscribe topic/m, WAIT_MS);
        for (const subject of ['orders.eu.paid', 'orders.eu.fr.created', 'orders.eu.created']) {
          const published = await omnibus(
            ['publish', topic, JSON.stringify({ subject }), '--subject', subject],
            {
              env,
            },
          );
          expect(published.code, published.stderr).toBe(0);
        }
        const result = await tail.done;
        expect(result.code, result.stderr).toBe(0);
        const messages = jsonLines(result.stdout);
        expect(messages).toHaveLength(1);
        expect(messages[0]).toMatchObject({
          subject: 'orders.eu.created',
          payload: { subject: 'orders.eu.created' },
        });
      },
      WAIT_MS * 3,
    );

    it(
      'append then read: positions printed, replayed in order, from a position too (or exit 3 without logs)',
      async () => {
        const log = unique('l');
        const appended = await omnibus(['append', log, '--lines', '--key', 'k'], { env, input: '1\n2\n3\n' });
        if (caps.capabilities.log === 'none') {
          expect(appended.code).toBe(3);
          expect(appended.stderr).toMatch(/log is not supported/);
          return;
        }
        expect(appended.code, appended.stderr).toBe(0);
        const positions = appended.stdout
          .trim()
          .split('\n')
          .map((line) => line.split(' ')[1]);
        expect(positions).toHaveLength(3);
        const all = await omnibus(
          ['read', log, '--from', 'earliest', '--count', '3', '--timeout', String(WAIT_MS)],
          {
            env,
            timeoutMs: WAIT_MS * 2,
          },
        );
        expect(all.code, all.stderr).toBe(0);
        const read = jsonLines<{ payload: number; position: { partition: number; offset: number } }>(
          all.stdout,
        );
        expect(read.map((m) => m.payload)).toEqual([1, 2, 3]);
        expect(read.map((m) => `${m.position.partition}:${m.position.offset}`)).toEqual(positions);
        const fromSecond = await omnibus(
          ['read', log, '--from', positions[1]!, '--count', '1', '--timeout', String(WAIT_MS)],
          { env, timeoutMs: WAIT_MS * 2 },
        );
        expect(fromSecond.code, fromSecond.stderr).toBe(0);
        expect(jsonLines(fromSecond.stdout).map((m) => m.payload)).toEqual([2]);
      },
      WAIT_MS * 4,
    );
  });
}
