/**
 * `omnibus dlq`, `depth`, `purge`, `lag`, `reset` and `delete-subscription` without a network
 * broker. The binary, spawned, on memory:// and its broker profiles: help, usage errors (2), and
 * exit 3 naming the capability wherever the profile lacks it — read from `caps --json`, so the test
 * follows the adapters as they gain capabilities. A memory:// broker lives inside one process, so
 * dead letters made by the test cannot be seen by a spawned `omnibus`: the round trips on memory run
 * the same program in this process (`run()`, what bin.js calls) against a named memory:// broker the
 * test shares; brokers-operations.test.ts runs them through the binary against every real broker.
 */
import { type Bus, connect } from '@omnibus/core';
import { afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { run } from '../src/program.js';
import { ensureBuilt, jsonLines, omnibus } from './omnibus.js';
import { seedDeadLetters } from './seed.js';

beforeAll(ensureBuilt, 240_000);

/** Each command, the capability it needs, and arguments that are valid on a broker that has it. */
const NEEDS: readonly { readonly args: string[]; readonly capability: string }[] = [
  { args: ['dlq', 'count', 'orders'], capability: 'depth' },
  { args: ['dlq', 'peek', 'orders'], capability: 'browse' },
  { args: ['dlq', 'redrive', 'orders', '--idle', '200'], capability: 'redrive' },
  {
    args: ['dlq', 'redrive', 'shop', '--subscription', 'billing', '--idle', '200'],
    capability: 'redriveSubscription',
  },
  {
    args: ['dlq', 'redrive', 'shop', '--subscription', 'billing', '--to', 'retries', '--idle', '200'],
    capability: 'redrive',
  },
  { args: ['depth', 'orders'], capability: 'depth' },
  { args: ['purge', 'orders', '--yes'], capability: 'purge' },
  { args: ['lag', 'audit', '--group', 'g'], capability: 'lag' },
  { args: ['reset', 'audit', '--group', 'g', '--to', 'earliest'], capability: 'resetGroup' },
  { args: ['delete-subscription', 'shop', 'billing', '--yes'], capability: 'deleteSubscription' },
];

describe('help and usage', () => {
  it.each([
    'dlq',
    'dlq count',
    'dlq peek',
    'dlq redrive',
    'depth',
    'purge',
    'lag',
    'reset',
    'delete-subscription',
  ])('%s --help has examples', async (command) => {
    const { code, stdout } = await omnibus([...command.split(' '), '--help']);
    expect(code).toBe(0);
    expect(stdout).toContain(`Usage: omnibus ${command}`);
    expect(stdout).toContain(`$ omnibus ${command.split(' ')[0]}`);
  });

  it.each([
    [['dlq', 'peek', 'shop', '--subscription', 'a', '--group', 'g'], /name one kind of source/],
    [['dlq', 'count', 'orders.dlq', '--dlq', '--dead-letter', 'x'], /--dlq names the dead-letter queue/],
    [['dlq', 'redrive', 'orders', '--reason', '(unclosed'], /--reason is not a regular expression/],
    [['dlq', 'redrive', 'orders', '--limit', '0'], /--limit.*whole number above 0/],
    [['reset', 'audit', '--group', 'g', '--to', 'yesterday'], /--to.*earliest, latest or an ISO time/],
    [['reset', 'audit', '--to', 'latest'], /--group/],
    [['lag', 'audit'], /--group/],
    [['dlq', 'frobnicate', 'orders'], /unknown command/],
    [['dlq', 'redrive', 'orders', '--topic'], /plain subscription.*\{ to: <queue> \}/],
    [['dlq', 'redrive', 'audit', '--group', 'g'], /log "audit".*\{ to: <queue> \}/],
  ])('%j is a usage error (2)', async (args, message) => {
    const { code, stderr } = await omnibus([...args, '--url', 'memory://']);
    expect(code).toBe(2);
    expect(stderr).toMatch(message);
  });

  it('purge and delete-subscription refuse without --yes when there is no terminal to ask', async () => {
    for (const args of [
      ['purge', 'orders'],
      ['delete-subscription', 'shop', 'billing'],
    ]) {
      const { code, stderr } = await omnibus([...args, '--url', 'memory://']);
      expect(code).toBe(2);
      expect(stderr).toMatch(/pass --yes to confirm/);
    }
  });

  it('no URL is exit 2; a password in the URL is never printed, errors included', async () => {
    expect((await omnibus(['depth', 'orders'])).code).toBe(2);
    const secret = 'Zk9sQ1-s3cret';
    const { code, stdout, stderr } = await omnibus(
      [
        'dlq',
        'peek',
        'orders',
        '--url',
        `amqp://guest:${secret}@127.0.0.1:9`,
        '--connect-timeout',
        '2000',
        '-v',
      ],
      { timeoutMs: 20_000 },
    );
    expect(code).toBe(4);
    expect(stderr).toContain('guest:***@127.0.0.1:9');
    expect(stdout + stderr).not.toContain(secret);
  });
});

// memory:// has every capability; the kafka and mqtt311 profiles are what those adapters declare
// (redrive of a queue's dead letters on both, of a durable subscription's on neither).
describe.each(['memory://', 'memory://?profile=kafka', 'memory://?profile=mqtt311'])(
  'on %s, each command follows the capability',
  (url) => {
    let capabilities: Record<string, string>;
    beforeAll(async () => {
      capabilities = JSON.parse((await omnibus(['caps', url, '--json'])).stdout).capabilities;
    });

    it.each(NEEDS.map((need) => ({ ...need, command: need.args.join(' ') })))(
      '$command needs $capability',
      async ({ args, capability }) => {
        const { code, stdout, stderr } = await omnibus([...args, '--url', url, '--json']);
        if (capabilities[capability] === 'none') {
          expect(code, stderr).toBe(3);
          // The capability, or the one it rests on where that is missing too (lag without logs).
          expect(stderr).toMatch(new RegExp(`\\b(${capability}|log) is not supported`));
          expect(stdout).toBe('');
        } else {
          // A fresh in-process broker: nothing there, and the command says so.
          expect(code, stderr).toBe(0);
          if (args[1] === 'peek') expect(stdout).toBe('');
          else expect(stdout.trim()).not.toBe('');
        }
      },
    );
  },
);

describe('round trips on a memory:// broker this process shares (run(), as bin.js runs it)', () => {
  let out = '';
  let err = '';
  afterEach(() => vi.restoreAllMocks());
  const omnibusHere = async (args: string[]) => {
    out = '';
    err = '';
    vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
      out += String(chunk);
      return true;
    });
    vi.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => {
      err += String(chunk);
      return true;
    });
    try {
      return { code: await run(args, '0.0.0'), stdout: out, stderr: err };
    } finally {
      vi.restoreAllMocks();
    }
  };

  /** Runs `body` with a bus on a memory:// broker of its own, closed afterwards. */
  const onBroker = async (suffix: string, body: (bus: Bus, url: string) => Promise<void>) => {
    const url = `memory://cli-ops-${process.pid}-${suffix}`;
    const bus = await connect(url);
    try {
      await body(bus, url);
    } finally {
      await bus.close();
    }
  };

  it('dlq count, peek, redrive by id and by reason, the rest, then nothing left', () =>
    onBroker('dlq', async (bus, url) => {
      const ids = await seedDeadLetters(bus, 'orders', ['boom a', 'timeout b', 'boom c'], 5000);
      const count = await omnibusHere(['dlq', 'count', 'orders', '--url', url]);
      expect(count).toMatchObject({ code: 0, stdout: '3\n' });
      expect(
        JSON.parse(
          (await omnibusHere(['dlq', 'count', 'orders.dlq', '--dlq', '--json', '--url', url])).stdout,
        ),
      ).toEqual({
        queue: 'orders.dlq',
        count: 3,
      });

      const peek = await omnibusHere(['dlq', 'peek', 'orders', '--json', '--url', url]);
      expect(peek.code, peek.stderr).toBe(0);
      const letters = jsonLines(peek.stdout);
      expect(letters.map((l) => l.id)).toEqual(ids);
      expect(letters[1]).toMatchObject({
        origin: { kind: 'queue', name: 'orders' },
        reason: expect.stringContaining('timeout b'),
        attempts: 1,
        payload: 'timeout b',
        headers: { tenant: 'acme' },
        redrives: 0,
      });
      expect(
        jsonLines((await omnibusHere(['dlq', 'peek', 'orders', '-n', '1', '--url', url])).stdout),
      ).toHaveLength(1);
      // Peeking consumed nothing.
      expect((await omnibusHere(['dlq', 'count', 'orders', '--url', url])).stdout).toBe('3\n');

      const byId = await omnibusHere(['dlq', 'redrive', 'orders', '--id', ids[2]!, '--json', '--url', url]);
      expect(byId.code, byId.stderr).toBe(0);
      expect(JSON.parse(byId.stdout)).toMatchObject({
        queue: 'orders.dlq',
        total: 3,
        moved: 1,
        skipped: 2,
        failed: 0,
      });
      expect(await bus.queue('orders').depth()).toBe(1);

      const byReason = await omnibusHere([
        'dlq',
        'redrive',
        'orders',
        '--reason',
        '^.*TIMEOUT',
        '--url',
        url,
      ]);
      expect(byReason.code, byReason.stderr).toBe(0);
      expect(byReason.stdout).toMatch(
        /^redrive orders\.dlq of 2: moved 1, skipped 1, failed 0 \(run \S+\)\n$/,
      );

      const rest = await omnibusHere(['dlq', 'redrive', 'orders', '--json', '--url', url]);
      expect(JSON.parse(rest.stdout)).toMatchObject({ total: 1, moved: 1, skipped: 0 });
      expect((await omnibusHere(['dlq', 'count', 'orders', '--url', url])).stdout).toBe('0\n');

      // Back on the queue, each once, the same ids, without the dead-letter headers.
      const back = await omnibusHere(['depth', 'orders', '--json', '--url', url]);
      expect(JSON.parse(back.stdout)).toEqual({ queue: 'orders', depth: 3 });
      const got: { id: string; headers: Record<string, string> }[] = [];
      for await (const m of bus.queue<string>('orders').messages()) {
        got.push(m);
        if (got.length === 3) break;
      }
      expect(got.map((m) => m.id).sort()).toEqual([...ids].sort());
      for (const m of got) {
        expect(m.headers.tenant).toBe('acme');
        expect(Object.keys(m.headers).filter((h) => h.startsWith('x-omnibus-dead-letter'))).toEqual([]);
      }
    }));

  it('dlq redrive --to another queue, with --limit', () =>
    onBroker('to', async (bus, url) => {
      await seedDeadLetters(bus, 'jobs', ['1', '2', '3'], 5000);
      const moved = await omnibusHere([
        'dlq',
        'redrive',
        'jobs',
        '--to',
        'jobs-retry',
        '--limit',
        '2',
        '--json',
        '--url',
        url,
      ]);
      expect(JSON.parse(moved.stdout)).toMatchObject({ moved: 2, skipped: 0 });
      expect(await bus.queue('jobs-retry').depth()).toBe(2);
      expect(await bus.queue('jobs').depth()).toBe(0);
      expect(await bus.deadLetters({ queue: 'jobs' }).count()).toBe(1);
    }));

  it('depth, purge --yes, lag, reset and delete-subscription', () =>
    onBroker('admin', async (bus, url) => {
      const queue = bus.queue<string>('work');
      for (const n of ['1', '2']) await queue.send(n);
      expect((await omnibusHere(['depth', 'work', '--url', url])).stdout).toBe('2\n');
      const purged = await omnibusHere(['purge', 'work', '--yes', '--url', url]);
      expect(purged).toMatchObject({ code: 0, stdout: 'purged 2 message(s) from work\n' });
      expect(await queue.depth()).toBe(0);

      const log = bus.log<string>('audit');
      for (const n of ['1', '2', '3']) await log.append(n);
      const reader = await log.read(async () => undefined, { group: 'indexer', from: 'earliest' });
      await vi.waitFor(async () => expect((await log.lag('indexer')).total).toBe(0), { timeout: 5000 });
      const resetArgs = ['reset', 'audit', '--group', 'indexer', '--to', 'earliest', '--url', url];
      const busy = await omnibusHere(resetArgs);
      expect(busy.code).toBe(2);
      await reader.close();
      const reset = await omnibusHere(resetArgs);
      expect(reset).toMatchObject({ code: 0, stdout: 'group indexer of log audit reset to earliest\n' });
      const lag = JSON.parse(
        (await omnibusHere(['lag', 'audit', '--group', 'indexer', '--json', '--url', url])).stdout,
      );
      expect(lag).toMatchObject({ log: 'audit', group: 'indexer', total: 3 });
      expect((await omnibusHere(['lag', 'audit', '--group', 'indexer', '--url', url])).stdout).toMatch(
        /^audit group indexer: 3 behind\n {2}partition +committed +end +lag\n {2}0 +0 +3 +3\n$/,
      );

      const topic = bus.topic<string>('shop');
      await (await topic.subscribe('#', async () => undefined, { durable: 'billing' })).close();
      const deleted = await omnibusHere([
        'delete-subscription',
        'shop',
        'billing',
        '--yes',
        '--json',
        '--url',
        url,
      ]);
      expect(JSON.parse(deleted.stdout)).toEqual({ topic: 'shop', subscription: 'billing', deleted: true });
      const again = await omnibusHere(['delete-subscription', 'shop', 'billing', '--yes', '--url', url]);
      expect(again).toMatchObject({
        code: 0,
        stdout: 'no durable subscription billing on topic shop: nothing to delete\n',
      });
    }));
});
