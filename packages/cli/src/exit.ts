/**
 * Exit codes, one per kind of outcome, so a script can tell "the broker lacks it" from "the broker
 * is down" from "you typed it wrong". Documented in the README and `omnibus --help`.
 */
import { isOmnibusError, redactUrl } from '@omnibus/core';

export const EXIT = {
  /** Done; for `check`, everything the broker claims holds. */
  ok: 0,
  /** Something did not work: a claimed capability did not hold, a send or a settlement failed. */
  failure: 1,
  /** Usage or configuration: a bad option, no broker URL, an invalid URL or destination name. */
  usage: 2,
  /** The broker lacks a capability the command (or `--requires`) needs. */
  unsupported: 3,
  /** The broker could not be reached or refused the connection (address, credentials, TLS). */
  connection: 4,
  /** `--timeout` passed before `--count` messages arrived. */
  timeout: 5,
} as const;

export type ExitCode = (typeof EXIT)[keyof typeof EXIT];

/** An error the CLI raises itself, with the exit code it means. */
export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode: ExitCode,
  ) {
    super(message);
    this.name = 'CliError';
  }
}

/** The Omnibus error codes with an exit code of their own; any other is a failure. */
const EXIT_OF_CODE: ReadonlyMap<string, ExitCode> = new Map([
  ['OMNIBUS_CONFIG', EXIT.usage],
  ['OMNIBUS_VALIDATION', EXIT.usage],
  ['OMNIBUS_UNSUPPORTED', EXIT.unsupported],
  ['OMNIBUS_CONNECTION', EXIT.connection],
]);

/** The exit code an error means. */
export function exitCodeOf(error: unknown): ExitCode {
  if (error instanceof CliError) return error.exitCode;
  if (!isOmnibusError(error)) return EXIT.failure;
  return EXIT_OF_CODE.get(error.code) ?? EXIT.failure;
}

/** One line (or a few) for stderr: the message, the issues of a config error, causes with `verbose`. Redacted. */
export function describeFailure(error: unknown, verbose: boolean): string {
  const lines: string[] = [];
  let current: unknown = error;
  for (let depth = 0; current !== undefined && depth < (verbose ? 8 : 1); depth++) {
    const text = current instanceof Error ? current.message : String(current);
    lines.push(depth === 0 ? text : `  caused by: ${text}`);
    const issues = depth === 0 ? (current as { issues?: unknown }).issues : undefined;
    if (Array.isArray(issues) && issues.length > 0 && !text.includes(String(issues[0])))
      lines.push(...issues.map((i) => `  - ${String(i)}`));
    current = current instanceof Error ? current.cause : undefined;
  }
  return redactUrl(lines.join('\n'));
}
