/**
 * What a contract test gets: fresh connections, unique names, and waiting for conditions with a
 * deadline (never a fixed sleep).
 */
import { randomBytes } from 'node:crypto';
import {
  type Bus,
  type Capabilities,
  type ConnectOptions,
  delay,
  HEADER,
  type Message,
  type QueueOptions,
} from '@omnibus/core';
import { expect } from 'vitest';

/** Where `inject` puts a foreign message: a queue, by its Omnibus name. */
export interface InjectTarget {
  readonly kind: 'queue';
  readonly name: string;
}

/** A message as a non-Omnibus producer sends it: bytes and its own headers, no Omnibus envelope, no id. */
export interface ForeignMessage {
  readonly body: Uint8Array;
  readonly headers?: Readonly<Record<string, string>>;
  readonly contentType?: string;
}

/**
 * Puts a foreign message on the broker with the broker's own client, where the adapter consumes
 * `target` from; resolves once the broker has it. The consumer is attached before it is called.
 */
export type Inject = (target: InjectTarget, message: ForeignMessage) => Promise<void>;

export interface ContractContext {
  /** A fresh connection, closed after the test. */
  connect(options?: ConnectOptions): Promise<Bus>;
  /** A name no other test uses: `ct-<random>-<suffix>`. */
  name(suffix: string): string;
  readonly capabilities: Capabilities;
  /** Restarts the broker; only present when the suite was given `restartBroker`. */
  readonly restartBroker: (() => Promise<void>) | undefined;
  /** How long to wait for a message before failing. */
  readonly timeoutMs: number;
  /** Puts foreign messages on the broker; only present when the suite was given `inject`. */
  readonly inject: Inject | undefined;
}

export interface ContractTest {
  readonly id: string;
  /** Runs only when this holds for the adapter; otherwise the test is not applicable (and listed as such). */
  readonly when?: (capabilities: Capabilities) => boolean;
  /** Why the test would not apply, printed when `when` is false. */
  readonly whenText?: string;
  readonly needsRestart?: boolean;
  /** Runs only when the suite was given `inject` (foreign messages). */
  readonly needsInject?: boolean;
  readonly run: (context: ContractContext) => Promise<void>;
}

/** Keeps each test's id as a literal type, so `skip` keys are checked by the compiler. */
export function defineTests<const T extends readonly ContractTest[]>(tests: T): T {
  return tests;
}

/** A capability a test can depend on: every flag but `limits` has a `none` level. */
export type Requirement = Exclude<keyof Capabilities, 'limits'>;

/**
 * Runs a test only where none of `features` is `none`; the reason names them
 * (`requires('queue', 'deadLetter')` is "queue or deadLetter is none").
 */
export function requires(...features: readonly [Requirement, ...Requirement[]]) {
  const last = features.at(-1);
  const others = features.slice(0, -1);
  return {
    when: (capabilities: Capabilities) => features.every((feature) => capabilities[feature] !== 'none'),
    whenText: `${others.length > 0 ? `${others.join(', ')} or ` : ''}${last} is none`,
  } as const;
}

export function uniqueName(suffix: string): string {
  return `ct-${randomBytes(4).toString('hex')}-${suffix}`;
}

/** Polls `condition` until it holds or the deadline passes; then fails with `what`. */
export async function waitFor(condition: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const dueAt = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > dueAt) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await delay(5);
  }
}

/** A handler that records what it receives. */
export function recorder<T = unknown>(onMessage?: (message: Message<T>) => unknown) {
  const messages: Message<T>[] = [];
  return {
    messages,
    payloads: () => messages.map((m) => m.payload),
    handler: async (message: Message<T>) => {
      messages.push(message);
      await onMessage?.(message);
    },
    async waitFor(count: number, timeoutMs: number, what = `${count} message(s)`): Promise<void> {
      await waitFor(() => messages.length >= count, `${what} (got ${messages.length})`, timeoutMs);
    },
  };
}

/** Records what reaches the dead-letter queue `queue`; consuming from it before anything fails. */
export async function deadLetters<T = unknown>(bus: Bus, queue: string, options?: QueueOptions<T>) {
  const dead = recorder<T>();
  await bus.queue<T>(queue, options).consume(dead.handler);
  return dead;
}

/**
 * Proves nothing is left on queue `name` for a new consumer on `bus`: it gets only a marker sent
 * after it attached.
 */
export async function expectOnlyMarker(bus: Bus, name: string, timeoutMs: number): Promise<void> {
  const next = recorder();
  await bus.queue(name).consume(next.handler);
  await bus.queue(name).send('marker');
  await next.waitFor(1, timeoutMs);
  expect(next.payloads()).toEqual(['marker']);
}

/** A test of foreign messages: it runs only when the suite was given `inject`, and gets it. */
export function withInject(run: (t: ContractContext, inject: Inject) => Promise<void>) {
  return {
    needsInject: true,
    run: (t: ContractContext) => {
      if (t.inject === undefined) throw new Error('this test needs the suite option `inject`');
      return run(t, t.inject);
    },
  } as const;
}

/** Checks the fixed dead-letter headers every copy carries, and that its failure times are in order. */
export function expectDeadLetterHeaders(
  letter: Message<unknown>,
  expected: {
    readonly origin: string;
    readonly kind: string;
    readonly reason: string;
    readonly attempts: number;
  },
): void {
  expect(letter.headers[HEADER.deadLetterOrigin], 'dead-letter origin').toBe(expected.origin);
  expect(letter.headers[HEADER.deadLetterKind], 'dead-letter kind').toBe(expected.kind);
  expect(letter.headers[HEADER.deadLetterReason], 'dead-letter reason').toBe(expected.reason);
  expect(letter.headers[HEADER.deadLetterAttempts], 'dead-letter attempts').toBe(String(expected.attempts));
  const first = Date.parse(letter.headers[HEADER.deadLetterFirstFailure] ?? '');
  const last = Date.parse(letter.headers[HEADER.deadLetterLastFailure] ?? '');
  expect(Number.isNaN(first) || Number.isNaN(last)).toBe(false);
  expect(last).toBeGreaterThanOrEqual(first);
}

/** A promise with its resolve function, for gates inside handlers. */
export function gate<T = void>() {
  let open!: (value: T) => void;
  const promise = new Promise<T>((resolve) => {
    open = resolve;
  });
  return { promise, open };
}

/** What `fn` throws when called, or undefined when it returns (for tests that look into the error). */
export function thrownBy(fn: () => unknown): unknown {
  try {
    fn();
  } catch (error) {
    return error;
  }
  return undefined;
}

/** Asserts that `fn` rejects with an error of class `type` whose `code` is `code`. */
export async function rejectsWith(
  fn: () => unknown,
  type: abstract new (...args: never[]) => Error,
  code: string,
  contains?: RegExp,
): Promise<Error> {
  let caught: unknown;
  try {
    await fn();
  } catch (error) {
    caught = error;
  }
  if (caught === undefined) throw new Error(`expected ${type.name} (${code}), but nothing was thrown`);
  if (!(caught instanceof type))
    throw new Error(`expected ${type.name}, got ${String(caught)}`, { cause: caught });
  const actual = (caught as { code?: unknown }).code;
  if (actual !== code) throw new Error(`expected code ${code}, got ${String(actual)}`);
  if (contains !== undefined && !contains.test(caught.message)) {
    throw new Error(`expected the message to match ${contains}, got "${caught.message}"`);
  }
  return caught;
}
