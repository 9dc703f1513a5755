/**
 * Runs the built `omnibus` binary as a user would: `node packages/cli/dist/bin.js …`, in its own
 * process, with stdin, stdout and stderr as pipes. Builds first when dist/ is missing or older than
 * src/ (CI has built already).
 */
import { execFile, spawn } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const exec = promisify(execFile);
const root = fileURLToPath(new URL('../../../', import.meta.url));
const cli = join(root, 'packages/cli');
export const BIN = join(cli, 'dist/bin.js');

const newest = (dir: string): number =>
  Math.max(
    ...readdirSync(dir, { recursive: true, encoding: 'utf8' }).map((f) => statSync(join(dir, f)).mtimeMs),
  );

/** Builds the CLI (and, when their dist/ is missing, the packages it runs on). */
export async function ensureBuilt(): Promise<void> {
  const deps = ['core', 'adapter-kafka', 'adapter-mqtt', 'adapter-rabbitmq', 'adapter-stomp', 'testing'];
  if (deps.some((d) => !existsSync(join(root, 'packages', d, 'dist/index.js')))) {
    await exec('pnpm', ['--filter', '@omnibus/cli...', 'run', 'build'], { cwd: root, timeout: 240_000 });
  } else if (!existsSync(BIN) || newest(join(cli, 'src')) > statSync(BIN).mtimeMs) {
    await exec('pnpm', ['run', 'build'], { cwd: cli, timeout: 120_000 });
  }
}

export interface Result {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

export interface RunOptions {
  /** Extra environment; BROKER_URL, NO_COLOR and FORCE_COLOR are cleared unless given here. */
  readonly env?: Record<string, string>;
  readonly input?: string;
  /** Kill it after this long (a hung command fails the test instead of the run). */
  readonly timeoutMs?: number;
}

/** A running `omnibus`: its output so far, a wait for a line, and its end. */
export interface Running {
  readonly stdout: () => string;
  readonly stderr: () => string;
  /** Resolves once stderr matches (e.g. /^ready:/m); rejects if it ends or the deadline passes first. */
  waitForStderr(pattern: RegExp, timeoutMs: number): Promise<void>;
  readonly done: Promise<Result>;
  kill(signal?: NodeJS.Signals): void;
}

export function start(args: readonly string[], options: RunOptions = {}): Running {
  const { BROKER_URL: _url, NO_COLOR: _no, FORCE_COLOR: _force, ...inherited } = process.env;
  const child = spawn(process.execPath, [BIN, ...args], {
    cwd: root,
    env: { ...inherited, ...options.env },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  const listeners = new Set<() => void>();
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
    stdout += chunk;
  });
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
    stderr += chunk;
    for (const listener of listeners) listener();
  });
  child.stdin.end(options.input ?? '');
  const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 60_000);
  let ended = false;
  const done = new Promise<Result>((resolve) => {
    child.on('close', (code) => {
      clearTimeout(timer);
      ended = true;
      for (const listener of listeners) listener();
      resolve({ code, stdout, stderr });
    });
  });
  return {
    stdout: () => stdout,
    stderr: () => stderr,
    done,
    kill: (signal = 'SIGTERM') => child.kill(signal),
    waitForStderr(pattern, timeoutMs) {
      return new Promise<void>((resolve, reject) => {
        const check = () => {
          if (pattern.test(stderr)) finish();
          else if (ended) finish(new Error(`omnibus ended before stderr matched ${pattern}: ${stderr}`));
        };
        const deadline = setTimeout(
          () => finish(new Error(`stderr did not match ${pattern} within ${timeoutMs} ms: ${stderr}`)),
          timeoutMs,
        );
        const finish = (error?: Error) => {
          clearTimeout(deadline);
          listeners.delete(check);
          if (error === undefined) resolve();
          else reject(error);
        };
        listeners.add(check);
        check();
      });
    },
  };
}

/** Runs `omnibus args…` to its end. */
export function omnibus(args: readonly string[], options: RunOptions = {}): Promise<Result> {
  return start(args, options).done;
}

/** stdout as JSON lines. */
export function jsonLines<T = Record<string, unknown>>(stdout: string): T[] {
  return stdout
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => JSON.parse(line) as T);
}
