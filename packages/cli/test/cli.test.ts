/**
 * The `omnibus` binary without a network broker: help, exit codes, URL handling and redaction, and
 * caps/check on memory://. A memory:// broker lives inside one process, so a send in one `omnibus`
 * process and a consume in another cannot meet there: round trips run against the real brokers
 * (brokers.test.ts), and the CLI refuses send/consume on memory:// with exit 2 instead of losing them.
 */
import { FEATURES } from '@omnibus/core';
import { beforeAll, describe, expect, it } from 'vitest';
import { ensureBuilt, omnibus } from './omnibus.js';

beforeAll(ensureBuilt, 240_000);

const COMMANDS = ['caps', 'check', 'send', 'publish', 'append', 'consume', 'subscribe', 'read'];

describe('help and exit codes', () => {
  it('--help lists every command and the exit codes', async () => {
    const { code, stdout } = await omnibus(['--help']);
    expect(code).toBe(0);
    for (const command of [...COMMANDS, 'dlq', 'depth', 'purge', 'lag', 'reset', 'delete-subscription'])
      expect(stdout).toContain(command);
    expect(stdout).toMatch(/Exit codes:[\s\S]*2 {2}usage[\s\S]*5 {2}--timeout/);
  });

  it.each(COMMANDS)('%s --help has examples', async (command) => {
    const { code, stdout } = await omnibus([command, '--help']);
    expect(code).toBe(0);
    expect(stdout).toContain(`Usage: omnibus ${command}`);
    expect(stdout).toContain('Examples:');
    expect(stdout).toContain(`$ omnibus ${command}`);
  });

  it('an unknown command or option is a usage error (2)', async () => {
    expect((await omnibus(['frobnicate'])).code).toBe(2);
    const bad = await omnibus(['consume', 'q', '--count', 'many', '--url', 'amqp://localhost']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/--count.*whole number/);
  });
});

describe('the broker URL', () => {
  it('is required: no --url and no BROKER_URL is exit 2 with what to do', async () => {
    const { code, stderr } = await omnibus(['caps']);
    expect(code).toBe(2);
    expect(stderr).toMatch(/no broker URL: pass --url <url> or set BROKER_URL/);
  });

  it('comes from BROKER_URL, and --url wins over it', async () => {
    const fromEnv = await omnibus(['caps', '--json'], { env: { BROKER_URL: 'memory://' } });
    expect(fromEnv.code).toBe(0);
    expect(JSON.parse(fromEnv.stdout).adapter).toBe('memory');
    const flag = await omnibus(['caps', '--json', '--url', 'memory://?profile=kafka'], {
      env: { BROKER_URL: 'nope://x' },
    });
    expect(JSON.parse(flag.stdout).capabilities.priority).toBe('none');
  });

  it('memory:// is refused for send and consume: their messages would die with the process', async () => {
    for (const args of [
      ['send', 'q', '1'],
      ['consume', 'q'],
    ]) {
      const { code, stderr } = await omnibus([...args, '--url', 'memory://']);
      expect(code).toBe(2);
      expect(stderr).toMatch(/lives only inside one process/);
    }
  });

  it('an unknown scheme is a configuration error (2)', async () => {
    const { code, stderr } = await omnibus(['caps', 'nope://host']);
    expect(code).toBe(2);
    expect(stderr).toMatch(/nope/);
  });

  it('a broker that does not answer is exit 4, and the password is never printed', async () => {
    const secret = 'Zk9sQ1-s3cret';
    const { code, stdout, stderr } = await omnibus(
      ['caps', `amqp://guest:${secret}@127.0.0.1:9?heartbeat=5`, '--connect-timeout', '3000', '--verbose'],
      { timeoutMs: 20_000 },
    );
    expect(code).toBe(4);
    expect(stderr).toContain('guest:***@127.0.0.1:9');
    expect(stdout + stderr).not.toContain(secret);
  });
});

describe('caps and check on memory://', () => {
  it('caps prints every capability; --json has them all', async () => {
    const table = await omnibus(['caps', 'memory://']);
    expect(table.code).toBe(0);
    for (const feature of FEATURES) expect(table.stdout).toMatch(new RegExp(`${feature}\\s+native`));
    const json = JSON.parse((await omnibus(['caps', 'memory://', '--json'])).stdout);
    expect(json).toMatchObject({ url: 'memory://', adapter: 'memory' });
    expect(Object.keys(json.capabilities)).toEqual(
      expect.arrayContaining([...FEATURES, 'ordering', 'limits']),
    );
  });

  it('check proves every capability and exits 0', async () => {
    const { code, stdout } = await omnibus(['check', 'memory://', '--json']);
    expect(code).toBe(0);
    const report = JSON.parse(stdout);
    expect(report.ok).toBe(true);
    expect(report.results.map((r: { status: string }) => r.status)).toEqual(FEATURES.map(() => 'holds'));
  });

  it('check on a profile proves that every none capability throws', async () => {
    const { code, stdout } = await omnibus(['check', 'memory://?profile=mqtt311', '--json']);
    expect(code).toBe(0);
    const byFeature = Object.fromEntries(
      JSON.parse(stdout).results.map((r: { feature: string; status: string }) => [r.feature, r.status]),
    );
    expect(byFeature).toMatchObject({ queue: 'holds', log: 'denied', priority: 'denied', headers: 'denied' });
    expect(byFeature.replay).toBe('unchecked');
  });

  it('check --requires: exit 0 when they hold, 3 naming what is missing', async () => {
    const ok = await omnibus(['check', 'memory://', '--requires', 'queue,replay=native']);
    expect(ok.code).toBe(0);
    expect(ok.stdout).toMatch(/queue\s+native/);
    expect(ok.stdout).not.toMatch(/topic\s+native/);
    const missing = await omnibus(['check', 'memory://?profile=kafka', '--requires', 'queue,priority,delay']);
    expect(missing.code).toBe(3);
    expect(missing.stdout).toMatch(/missing for --requires: priority \(needs emulated, has none\), delay/);
    const typo = await omnibus(['check', 'memory://', '--requires', 'replays']);
    expect(typo.code).toBe(2);
    expect(typo.stderr).toMatch(/unknown capability "replays"/);
  });
});
