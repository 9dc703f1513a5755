/**
 * `omnibus dlq`, `depth` and `purge` against each real broker, the binary spawned as a user runs
 * it. Dead letters are made with the SDK in this process (a consumer that fails every message,
 * `maxAttempts` 1); then `omnibus` counts, peeks and redrives them. Each command follows what
 * `omnibus caps --json` says: where the broker has the capability, the round trip; where it does
 * not, exit 3 naming it and the dead letters untouched.
 */
import { randomBytes } from 'node:crypto';
import { connect } from '@omnibus/core';
import { type BrokerName, brokerAvailable, brokerUrls } from '@omnibus/test-brokers';
import { beforeAll, describe, expect, it } from 'vitest';
import { bundledAdapters } from '../src/adapters.js';
import { ensureBuilt, jsonLines, omnibus } from './omnibus.js';
import { seedDeadLetters } from './seed.js';

const urls = brokerUrls();
const families: readonly { readonly broker: BrokerName; readonly url: string }[] = [
  { broker: 'rabbitmq', url: urls.amqp },
  { broker: 'kafka', url: `kafka://${urls.kafkaBrokers.join(',')}` },
  { broker: 'mosquitto', url: urls.mqtt },
  { broker: 'rabbitmq-stomp', url: urls.stomp },
  { broker: 'activemq', url: urls.activemqStomp },
];

beforeAll(ensureBuilt, 240_000);

const WAIT_MS = 30_000;
const unique = (what: string) => `cli-ops-${what}-${randomBytes(4).toString('hex')}`;

for (const family of families) {
  const available = await brokerAvailable(family.broker);
  if (!available.ok) console.warn(`skipping omnibus operations on ${family.broker}: ${available.reason}`);

  describe.skipIf(!available.ok)(`omnibus dlq, depth and purge on ${family.broker}`, () => {
    const env = { BROKER_URL: family.url };
    let caps: Record<string, string>;
    const has = (capability: string) => caps[capability] !== 'none';

    beforeAll(async () => {
      const result = await omnibus(['caps', '--json'], { env });
      expect(result.code, result.stderr).toBe(0);
      caps = JSON.parse(result.stdout).capabilities;
    }, WAIT_MS);

    it(
      'dlq count, peek and redrive: the round trip, or exit 3 naming the capability',
      async () => {
        const queue = unique('q');
        const bus = await connect(family.url, { adapters: bundledAdapters() });
        let ids: string[];
        try {
          ids = await seedDeadLetters(bus, queue, ['boom a', 'timeout b'], WAIT_MS);
        } finally {
          await bus.close();
        }

        const count = await omnibus(['dlq', 'count', queue], { env });
        if (has('depth')) expect(count).toMatchObject({ code: 0, stdout: '2\n' });
        else {
          expect(count.code).toBe(3);
          expect(count.stderr).toMatch(/\bdepth is not supported/);
        }

        const peek = await omnibus(['dlq', 'peek', queue, '--json'], { env });
        if (has('browse')) {
          expect(peek.code, peek.stderr).toBe(0);
          const letters = jsonLines(peek.stdout);
          expect(letters.map((l) => l.id)).toEqual(ids);
          expect(letters[1]).toMatchObject({
            origin: { kind: 'queue', name: queue },
            reason: expect.stringContaining('timeout b'),
            payload: 'timeout b',
          });
        } else {
          expect(peek.code).toBe(3);
          expect(peek.stderr).toMatch(/\bbrowse is not supported/);
        }

        const redrive = await omnibus(['dlq', 'redrive', queue, '--reason', 'timeout', '--json'], {
          env,
          timeoutMs: WAIT_MS * 2,
        });
        // Every broker with queues redrives a queue's dead letters (the branch below is for an
        // adapter that would not).
        if (!has('redrive')) {
          expect(redrive.code).toBe(3);
          expect(redrive.stderr).toMatch(/\bredrive is not supported/);
          // Refused before anything moved: both dead letters are still there.
          const left = await omnibus(
            ['consume', `${queue}.dlq`, '--count', '2', '--timeout', String(WAIT_MS)],
            {
              env,
              timeoutMs: WAIT_MS * 2,
            },
          );
          expect(left.code, left.stderr).toBe(0);
          expect(jsonLines(left.stdout).map((m) => m.id)).toEqual(ids);
          return;
        }
        expect(redrive.code, redrive.stderr).toBe(0);
        expect(JSON.parse(redrive.stdout)).toMatchObject({ moved: 1, skipped: 1, failed: 0 });
        const back = await omnibus(['consume', queue, '--count', '1', '--timeout', String(WAIT_MS)], {
          env,
          timeoutMs: WAIT_MS * 2,
        });
        expect(back.code, back.stderr).toBe(0);
        expect(jsonLines(back.stdout)).toMatchObject([{ id: ids[1], payload: 'timeout b', attempt: 1 }]);
        const rest = await omnibus(['dlq', 'redrive', queue, '--json'], { env, timeoutMs: WAIT_MS * 2 });
        expect(JSON.parse(rest.stdout)).toMatchObject({ moved: 1, failed: 0 });
        if (has('depth')) expect((await omnibus(['dlq', 'count', queue], { env })).stdout).toBe('0\n');
      },
      WAIT_MS * 6,
    );

    it(
      'dlq redrive --subscription: back to it alone, or exit 3 naming redriveSubscription and --to moves it',
      async () => {
        const topic = unique('t');
        const durable = unique('d');
        const bus = await connect(family.url, { adapters: bundledAdapters() });
        let id: string;
        try {
          const dead = new Promise<void>((resolve) => bus.on('deadLetter', () => resolve()));
          const handle = bus.topic<string>(topic);
          const sub = await handle.subscribe(
            '#',
            () => {
              throw new Error('no');
            },
            { durable, maxAttempts: 1 },
          );
          id = (await handle.publish('order')).id;
          await dead;
          await sub.close();
        } finally {
          await bus.close();
        }
        const redrive = await omnibus(['dlq', 'redrive', topic, '--subscription', durable, '--json'], {
          env,
          timeoutMs: WAIT_MS * 2,
        });
        if (has('redriveSubscription')) {
          expect(redrive.code, redrive.stderr).toBe(0);
          expect(JSON.parse(redrive.stdout)).toMatchObject({ moved: 1, failed: 0 });
          return;
        }
        expect(redrive.code).toBe(3);
        expect(redrive.stderr).toMatch(/\bredriveSubscription is not supported/);
        const to = unique('retries');
        const moved = await omnibus(
          ['dlq', 'redrive', topic, '--subscription', durable, '--to', to, '--json'],
          { env, timeoutMs: WAIT_MS * 2 },
        );
        expect(moved.code, moved.stderr).toBe(0);
        expect(JSON.parse(moved.stdout)).toMatchObject({ moved: 1, failed: 0 });
        const back = await omnibus(['consume', to, '--count', '1', '--timeout', String(WAIT_MS)], {
          env,
          timeoutMs: WAIT_MS * 2,
        });
        expect(back.code, back.stderr).toBe(0);
        expect(jsonLines(back.stdout)).toMatchObject([{ id, payload: 'order', attempt: 1 }]);
      },
      WAIT_MS * 6,
    );

    it(
      'depth and purge --yes: the counts, or exit 3 naming the capability',
      async () => {
        const queue = unique('p');
        const sent = await omnibus(['send', queue, '--lines'], { env, input: '1\n2\n3\n' });
        expect(sent.code, sent.stderr).toBe(0);
        const depth = await omnibus(['depth', queue], { env });
        if (has('depth')) expect(depth).toMatchObject({ code: 0, stdout: '3\n' });
        else {
          expect(depth.code).toBe(3);
          expect(depth.stderr).toMatch(/\bdepth is not supported/);
        }
        const purge = await omnibus(['purge', queue, '--yes', '--json'], { env });
        if (!has('purge')) {
          expect(purge.code).toBe(3);
          expect(purge.stderr).toMatch(/\bpurge is not supported/);
          const left = await omnibus(['consume', queue, '--count', '3', '--timeout', String(WAIT_MS)], {
            env,
            timeoutMs: WAIT_MS * 2,
          });
          expect(left.code, left.stderr).toBe(0);
          return;
        }
        expect(purge.code, purge.stderr).toBe(0);
        expect(JSON.parse(purge.stdout).purged).toBeOneOf([3, null]);
        const none = await omnibus(['consume', queue, '--count', '1', '--timeout', '1500'], { env });
        expect(none.code).toBe(5);
      },
      WAIT_MS * 4,
    );
  });
}
