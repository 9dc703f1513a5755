/** The broker URL, the connection, and the options every command that connects shares. */
import {
  type Bus,
  type ConnectOptions,
  connect,
  type Logger,
  type Requirements,
  redactUrl,
} from '@omnibus/core';
import type { Command } from 'commander';
import { bundledAdapters } from './adapters.js';
import { CliError, EXIT } from './exit.js';
import { parsePositiveInt } from './options.js';

export interface ConnectionFlags {
  readonly url?: string;
  readonly verbose?: boolean;
  readonly connectTimeout?: number;
}

/** Adds `--url`, `--connect-timeout` and `--verbose` to a command. */
export function connectionOptions(command: Command): Command {
  return command
    .option('-u, --url <url>', 'broker URL (default: $BROKER_URL)')
    .option('--connect-timeout <ms>', 'give up connecting after this long', parsePositiveInt, 10_000)
    .option('-v, --verbose', "log the adapter's debug lines and error causes to stderr");
}

/**
 * The URL: a positional argument, else `--url`, else `BROKER_URL`. There is no default: `memory://`
 * lives inside one process, so a CLI that sent to it would lose every message on exit.
 */
export function brokerUrl(
  flags: ConnectionFlags,
  positional?: string,
  options: { readonly memoryAllowed: boolean } = { memoryAllowed: false },
): string {
  const url = positional ?? flags.url ?? nonEmpty(process.env.BROKER_URL);
  if (url === undefined) {
    throw new CliError(
      'no broker URL: pass --url <url> or set BROKER_URL (e.g. BROKER_URL=amqp://localhost:5672)',
      EXIT.usage,
    );
  }
  if (!options.memoryAllowed && /^memory:/i.test(url)) {
    throw new CliError(
      `${redactUrl(url)} lives only inside one process: what this command sends or waits for would be gone when it exits. Use a broker URL (memory:// works with caps and check)`,
      EXIT.usage,
    );
  }
  return url;
}

/** Connects with the CLI's adapters, a client id that says who it is, and a stderr logger with --verbose. */
export async function connectBus(url: string, flags: ConnectionFlags, requires?: Requirements): Promise<Bus> {
  // `memory://?profile=kafka` (the in-memory broker with a real adapter's capabilities, as tests
  // see it): the profiles are registered by @omnibus/testing, loaded only for such a URL.
  if (/^memory:\/\/[^#]*[?&]profile=/i.test(url)) await import('@omnibus/testing');
  const options: ConnectOptions = {
    adapters: bundledAdapters(),
    clientId: `omnibus-cli-${process.pid}`,
    connectTimeoutMs: flags.connectTimeout ?? 10_000,
    ...(flags.verbose === true ? { logger: stderrLogger() } : {}),
    ...(requires !== undefined ? { requires } : {}),
  };
  return connect(url, options);
}

function nonEmpty(value: string | undefined): string | undefined {
  const trimmed = value?.trim();
  return trimmed === undefined || trimmed === '' ? undefined : trimmed;
}

/** `(fields, message)` to stderr, one line each, redacted. */
function stderrLogger(bindings: Record<string, unknown> = {}): Logger {
  const line = (level: string) => (fields: Record<string, unknown>, message: string) => {
    const all = { ...bindings, ...fields };
    const extra = Object.keys(all).length > 0 ? ` ${safeJson(all)}` : '';
    process.stderr.write(`${redactUrl(`[${level}] ${message}${extra}`)}\n`);
  };
  return {
    debug: line('debug'),
    info: line('info'),
    warn: line('warn'),
    error: line('error'),
    child: (more) => stderrLogger({ ...bindings, ...more }),
  };
}

function safeJson(value: unknown): string {
  try {
    return JSON.stringify(value, (_key, v: unknown) => (v instanceof Error ? v.message : v));
  } catch {
    return String(value);
  }
}
