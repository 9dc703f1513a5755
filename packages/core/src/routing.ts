/**
 * Destination names, subjects and subject patterns: validated before they reach a broker, and
 * matched here for brokers (and the in-memory one) that filter on the client.
 */
import { createHash } from 'node:crypto';
import { ValidationError } from './errors.js';

/** Longest destination name: `<name>.dlq` then fits every broker's limit (Kafka 249, RabbitMQ 255 bytes). */
export const MAX_NAME_LENGTH = 200;
/**
 * What a default dead-letter queue adds to its queue's name. A name ending in it may be that much
 * longer than `MAX_NAME_LENGTH`, so the dead letters of a queue named at the limit can be read.
 */
export const DEAD_LETTER_SUFFIX = '.dlq';
/**
 * The default dead-letter queue of a destination: `<name>.dlq`, or `<topic>.<subscription>.dlq` for
 * a durable subscription and `<log>.<group>.dlq` for a log group, so each one's dead letters are
 * apart. Where `<name>.<consumer>` is longer than `MAX_NAME_LENGTH`, it is cut to 191 characters
 * and `-` plus 8 hex digits of its SHA-256 are added: 200, every broker takes it with `.dlq`.
 */
export function deadLetterName(destination: string, consumer?: string): string {
  const base = consumer === undefined ? destination : `${destination}.${consumer}`;
  if (base.length <= MAX_NAME_LENGTH) return `${base}${DEAD_LETTER_SUFFIX}`;
  const digest = createHash('sha256').update(base).digest('hex').slice(0, 8);
  return `${base.slice(0, MAX_NAME_LENGTH - 9)}-${digest}${DEAD_LETTER_SUFFIX}`;
}

/** Longest subject or pattern. */
export const MAX_SUBJECT_LENGTH = 255;

const NAME = /^[A-Za-z0-9_][A-Za-z0-9._-]*$/;
const WORD = /^[A-Za-z0-9_-]+$/;

/**
 * Throws unless `name` is portable across every broker: 1–200 of `A-Z a-z 0-9 . _ -`, not starting
 * with `.` or `-` (plus `.dlq`: the dead-letter queue of a 200-character queue is valid too).
 */
export function validateName(kind: string, name: unknown): string {
  if (typeof name !== 'string' || name.length === 0) {
    throw new ValidationError(`${kind} name must be a non-empty string`);
  }
  const deadLetter = name.endsWith(DEAD_LETTER_SUFFIX);
  if (name.length > MAX_NAME_LENGTH + (deadLetter ? DEAD_LETTER_SUFFIX.length : 0)) {
    throw new ValidationError(
      `${kind} name is ${name.length} characters long; the limit is ${MAX_NAME_LENGTH}${deadLetter ? ` (${MAX_NAME_LENGTH + DEAD_LETTER_SUFFIX.length} with "${DEAD_LETTER_SUFFIX}")` : ''}`,
    );
  }
  if (!NAME.test(name)) {
    throw new ValidationError(
      `${kind} name "${printable(name)}" is not portable: use letters, digits, ".", "_" and "-", not starting with "." or "-"`,
    );
  }
  return name;
}

/** A whole valid subject in one test: what `validateSubject` accepts (the check on every publish). */
const SUBJECT = /^[A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]+)*$/;

/** Throws unless `subject` is dot-separated words of `A-Z a-z 0-9 _ -` (no `*`, `#` or empty words). */
export function validateSubject(subject: unknown): string {
  if (typeof subject === 'string' && subject.length <= MAX_SUBJECT_LENGTH && SUBJECT.test(subject)) {
    return subject;
  }
  // Invalid: word by word, to say what is wrong.
  return validateWords(
    'subject',
    subject,
    'subject must be a non-empty string of dot-separated words',
    (word) => {
      if (word.includes('*') || word.includes('#')) {
        return 'contains a wildcard; "*" and "#" belong in subscription patterns, not in published subjects';
      }
      return WORD.test(word)
        ? undefined
        : `has an invalid word "${printable(word)}": words are non-empty and use letters, digits, "_" and "-"`;
    },
  );
}

/** Throws unless `pattern` is dot-separated words, each a word, `*` (one word) or `#` (zero or more words). */
export function validatePattern(pattern: unknown): string {
  const empty = 'subscription pattern must be a non-empty string such as "orders.*" or "#"';
  return validateWords('pattern', pattern, empty, (word) =>
    word === '*' || word === '#' || WORD.test(word)
      ? undefined
      : `has an invalid word "${printable(word)}": use words, "*" or "#" between dots`,
  );
}

/** A non-empty string of at most `MAX_SUBJECT_LENGTH` whose every word passes `check` (which names the problem). */
function validateWords(
  what: string,
  value: unknown,
  empty: string,
  check: (word: string) => string | undefined,
): string {
  if (typeof value !== 'string' || value.length === 0) throw new ValidationError(empty);
  if (value.length > MAX_SUBJECT_LENGTH) {
    throw new ValidationError(
      `${what} is ${value.length} characters long; the limit is ${MAX_SUBJECT_LENGTH}`,
    );
  }
  for (const word of value.split('.')) {
    const problem = check(word);
    if (problem !== undefined) throw new ValidationError(`${what} "${printable(value)}" ${problem}`);
  }
  return value;
}

/** A predicate for subjects; `undefined` (a message without subject) is matched only by patterns of `#` alone. */
export type SubjectMatcher = (subject: string | undefined) => boolean;

export function compilePattern(pattern: string): SubjectMatcher {
  const words = pattern.split('.');
  if (words.every((w) => w === '#')) return () => true;
  if (!words.includes('#') && !words.includes('*')) return (subject) => subject === pattern;
  if (!words.includes('#')) {
    // Only `*`: same number of words, literal words equal. One regular expression (no backtracking
    // to speak of: `*` cannot match a dot), so matching a subject allocates nothing.
    const exact = new RegExp(
      `^${words.map((w) => (w === '*' ? '[^.]*' : w.replace(/[\\^$.*+?()[\]{}|/]/g, '\\$&'))).join('\\.')}$`,
    );
    return (subject) => subject !== undefined && exact.test(subject);
  }
  return (subject) => subject !== undefined && matchWords(words, subject.split('.'));
}

export function matchSubject(pattern: string, subject: string | undefined): boolean {
  return compilePattern(pattern)(subject);
}

/**
 * Dynamic programming over (pattern word, subject word): O(pattern × subject), so a pattern with
 * many `#` cannot make matching exponential (a backtracking matcher would hang on `#.#.#.….x`).
 */
function matchWords(pattern: readonly string[], subject: readonly string[]): boolean {
  let matched: boolean[] = new Array<boolean>(subject.length + 1).fill(false);
  matched[0] = true;
  for (const word of pattern) {
    const next = new Array<boolean>(subject.length + 1).fill(false);
    if (word === '#') {
      let any = false;
      for (let s = 0; s <= subject.length; s++) {
        any = any || matched[s]!;
        next[s] = any;
      }
    } else {
      for (let s = 1; s <= subject.length; s++) {
        next[s] = matched[s - 1]! && (word === '*' || word === subject[s - 1]);
      }
    }
    matched = next;
  }
  return matched[subject.length]!;
}

function printable(value: string): string {
  const shown = value.length > 60 ? `${value.slice(0, 60)}…` : value;
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what this escapes
  return shown.replace(/[\u0000-\u001f]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}
