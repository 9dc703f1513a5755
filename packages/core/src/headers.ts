/** The `x-omnibus-` headers: the same names on every broker, so tools inspect and redrive dead letters alike. */
import type { Headers } from './types.js';

export const HEADER = {
  /** The attempt the next delivery of this message is (set on retried copies). */
  attempt: 'x-omnibus-attempt',
  /** When the message first failed, ISO 8601 (carried across retries). */
  firstFailure: 'x-omnibus-first-failure',
  /** Dead letters: the queue, topic or log the message came from. */
  deadLetterOrigin: 'x-omnibus-dead-letter-origin',
  /** Dead letters: `queue`, `topic` or `log`. */
  deadLetterKind: 'x-omnibus-dead-letter-kind',
  /** Dead letters: why (the handler's error message, or the validation error). */
  deadLetterReason: 'x-omnibus-dead-letter-reason',
  /** Dead letters: how many deliveries were tried. */
  deadLetterAttempts: 'x-omnibus-dead-letter-attempts',
  /** Dead letters: first failure, ISO 8601. */
  deadLetterFirstFailure: 'x-omnibus-dead-letter-first-failure',
  /** Dead letters: last failure, ISO 8601. */
  deadLetterLastFailure: 'x-omnibus-dead-letter-last-failure',
} as const;

/** Control headers core reads and removes before the application sees `message.headers`. */
const CONTROL = new Set<string>([HEADER.attempt, HEADER.firstFailure]);

export function applicationHeaders(headers: Headers): Headers {
  let copy: Headers | undefined;
  for (const name of CONTROL) {
    if (name in headers) {
      copy ??= { ...headers };
      delete copy[name];
    }
  }
  return copy ?? headers;
}

export function headerAttempt(headers: Headers): number {
  const value = headers[HEADER.attempt];
  if (value === undefined) return 1;
  const n = Number.parseInt(value, 10);
  return Number.isInteger(n) && n >= 1 ? n : 1;
}

/** Headers must be a flat record of string values: brokers carry nothing else portably. */
export function validateHeaders(headers: unknown): string[] {
  if (headers === undefined) return [];
  if (typeof headers !== 'object' || headers === null || Array.isArray(headers)) {
    return ['headers must be an object of string values'];
  }
  const issues: string[] = [];
  for (const [name, value] of Object.entries(headers)) {
    if (name === '' || name.includes('\u0000') || /[\r\n:]/.test(name))
      issues.push(`header name "${name}" is empty or contains ":", CR, LF or NUL`);
    if (typeof value !== 'string') issues.push(`header "${name}" must be a string, got ${typeof value}`);
    if (name.toLowerCase().startsWith('x-omnibus-'))
      issues.push(`header "${name}" uses the reserved prefix x-omnibus-`);
  }
  return issues;
}
