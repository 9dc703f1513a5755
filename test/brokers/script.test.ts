// scripts/brokers.sh's own process bookkeeping, sourced into bash with a work dir of the test's
// (no broker is started or stopped). A session's background brokers die with it and leave their
// pidfiles behind; the next `up` (CI's) must start them anew, not take the dead pid, or a pid
// that another process has since been given, for the broker's.
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';

const run = promisify(execFile);
const script = fileURLToPath(new URL('../../scripts/brokers.sh', import.meta.url));

/** Runs `body` in bash after sourcing brokers.sh with BROKERS_DIR=dir; resolves with its stdout. */
async function inScript(dir: string, body: string): Promise<string> {
  const { stdout } = await run('bash', ['-c', `source "$1"; ${body}`, 'bash', script], {
    env: { ...process.env, BROKERS_DIR: dir },
    timeout: 20_000,
  });
  return stdout.trim();
}

/** A pid no process has: one that ran and exited. */
async function deadPid(): Promise<number> {
  const { stdout } = await run('bash', ['-c', 'sleep 0 & echo $!; wait']);
  return Number(stdout.trim());
}

describe('scripts/brokers.sh pidfiles', () => {
  let dir: string;
  const started: number[] = [];
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'omnibus-brokers-sh-'));
  });
  afterEach(() => {
    for (const pid of started.splice(0)) {
      try {
        process.kill(-pid, 'SIGKILL'); // setsid made it a group leader: its sleep goes too
      } catch {
        // already gone
      }
    }
    rmSync(dir, { recursive: true, force: true });
  });

  it('start_detached writes the new process pid over a pidfile a dead broker left', async () => {
    const pidfile = join(dir, 'broker.pid');
    writeFileSync(pidfile, `${await deadPid()}\n`);
    // The command names a file in the pidfile's directory, as every broker's command line does.
    const pid = Number(
      await inScript(
        dir,
        `start_detached "${pidfile}" "${dir}/out.log" bash -c 'sleep 60; :' "${dir}/marker"; cat "${pidfile}"`,
      ),
    );
    started.push(pid);
    expect(readFileSync(`/proc/${pid}/cmdline`, 'utf8')).toContain(`${dir}/marker`);
    expect(await inScript(dir, `pidfile_pid "${pidfile}"`)).toBe(String(pid));
  });

  it('pidfile_pid gives nothing for a dead pid, or a live process that is not the broker', async () => {
    const pidfile = join(dir, 'broker.pid');
    writeFileSync(pidfile, `${await deadPid()}\n`);
    expect(await inScript(dir, `pidfile_pid "${pidfile}"`)).toBe('');
    // This test's own process is alive, and its command line names nothing in the work dir.
    writeFileSync(pidfile, `${process.pid}\n`);
    expect(await inScript(dir, `pidfile_pid "${pidfile}"`)).toBe('');
  });
});
