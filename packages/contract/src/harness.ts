/**
 * What a contract test gets: fresh connections, unique names, and waiting for conditions with a
 * deadline (never a fixed sleep).
 */
import { randomBytes } from 'node:crypto';
import { type Bus, type Capabilities, type ConnectOptions, delay, type Message } from '@omnibus/core';

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

/** Resolves after `ms`: only for tests about time itself (delays), never to wait for a message. */
export function elapsedSince(start: number): number {
  return Date.now() - start;
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

/** A promise with its resolve function, for gates inside handlers. */
export function gate<T = void>() {
  let open!: (value: T) => void;
  const promise = new Promise<T>((resolve) => {
    open = resolve;
  });
  return { promise, open };
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
