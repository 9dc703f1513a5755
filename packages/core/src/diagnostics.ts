/**
 * Instrumentation points: `node:diagnostics_channel` channels, the way undici and node's http are
 * instrumented. Core publishes on them with no dependency and, when nobody subscribes, no cost but
 * one `hasSubscribers` check per message. `@omnibus/opentelemetry` turns them into spans and
 * metrics; anything else (a logger, a test spy) can subscribe too. docs/instrumentation.md is the
 * contract.
 *
 * - `omnibus:send` (tracing channel): each send, publish and append, from the call to the broker's
 *   confirmation. `start` may add entries to `context.headers` (trace context): they travel.
 * - `omnibus:process` (tracing channel): each handler run. `start` may set `context.scope` to run
 *   the handler in a context of its own (an OpenTelemetry span's, say).
 * - `omnibus:settle` (channel): each settlement: ack, retry, deadLetter, requeue.
 * - `omnibus:connection` (channel): each connection state change.
 */
import { channel, tracingChannel } from 'node:diagnostics_channel';
import type { ConnectionState, Headers, LogPosition } from './types.js';

export type DestinationKind = 'queue' | 'topic' | 'log';

export interface SendContext {
  readonly adapter: string;
  /** The sending connection's `clientId`: tells apart buses of one process. */
  readonly clientId: string;
  readonly kind: DestinationKind;
  readonly operation: 'send' | 'publish' | 'append';
  readonly destination: string;
  readonly id: string;
  readonly key: string | undefined;
  readonly subject: string | undefined;
  readonly priority: number | undefined;
  readonly delayMs: number | undefined;
  readonly bodySize: number;
  /** The message's application headers; entries added in `start` travel with the message. */
  readonly headers: Record<string, string>;
  /** An append's position, set before `asyncEnd`. */
  position?: LogPosition;
  /** Set by the tracing channel on failure. */
  error?: unknown;
}

/** Which delivery of which message, where: what `omnibus:process` and `omnibus:settle` both carry. */
export interface ConsumedMessage {
  readonly adapter: string;
  /** The consuming connection's `clientId`. */
  readonly clientId: string;
  readonly kind: DestinationKind;
  readonly destination: string;
  /** The durable subscription or the log group, when there is one. */
  readonly consumer: string | undefined;
  readonly id: string;
  readonly attempt: number;
}

export interface ProcessContext extends ConsumedMessage {
  readonly key: string | undefined;
  readonly subject: string | undefined;
  readonly redelivered: boolean;
  readonly position: LogPosition | undefined;
  readonly bodySize: number;
  /** The message's application headers (trace context to extract, say). */
  readonly headers: Readonly<Record<string, string>>;
  /** Set in `start` to run the handler inside a context of the instrumentation's own. */
  scope?: <R>(run: () => R) => R;
  /** How the run ended, set before `asyncEnd`: the first settlement decided. */
  outcome?: Outcome;
  /**
   * Set before `asyncEnd` when the run failed: what the handler threw, its timeout, or the decoding
   * or validation error. Unset when the handler settled without an error (an explicit `reject`).
   */
  failure?: unknown;
  error?: unknown;
}

export type Outcome = 'ack' | 'retry' | 'deadLetter' | 'requeue';

export interface SettleMessage extends ConsumedMessage {
  readonly outcome: Outcome;
  /** Why, for retries and dead letters. */
  readonly reason?: string;
  /** For retries: how long until the next attempt. */
  readonly delayMs?: number;
  /** For dead letters: where it went. */
  readonly deadLetter?: string;
}

export interface ConnectionMessage {
  readonly adapter: string;
  readonly clientId: string;
  readonly state: ConnectionState;
  readonly error: Error | undefined;
}

export const CHANNELS = {
  send: 'omnibus:send',
  process: 'omnibus:process',
  settle: 'omnibus:settle',
  connection: 'omnibus:connection',
} as const;

export const sendChannel = tracingChannel<unknown, SendContext>(CHANNELS.send);
export const processChannel = tracingChannel<unknown, ProcessContext>(CHANNELS.process);
export const settleChannel = channel(CHANNELS.settle);
export const connectionChannel = channel(CHANNELS.connection);

/** What a consumer knows of where it consumes: the part of its channel messages that never changes. */
export type ConsumerSource = Pick<
  ConsumedMessage,
  'adapter' | 'clientId' | 'kind' | 'destination' | 'consumer'
>;

// The two builders below write every field out. An object spread followed by more fields
// (`{ ...source, id, attempt }`) costs microseconds per object on node 20's V8, more as a process
// runs (measured: 3–30 µs against 0.15 µs for the literal), which made any subscriber expensive.

/** The `omnibus:process` message of one handler run. */
export function processContext(
  source: ConsumerSource,
  id: string,
  key: string | undefined,
  subject: string | undefined,
  attempt: number,
  redelivered: boolean,
  position: LogPosition | undefined,
  bodySize: number,
  headers: Readonly<Headers>,
): ProcessContext {
  return {
    adapter: source.adapter,
    clientId: source.clientId,
    kind: source.kind,
    destination: source.destination,
    consumer: source.consumer,
    id,
    key,
    subject,
    attempt,
    redelivered,
    position,
    bodySize,
    headers,
  };
}

/** The `omnibus:settle` message of one settlement. */
export function settleMessage(
  source: ConsumerSource,
  id: string,
  attempt: number,
  outcome: Outcome,
  reason: string | undefined,
  delayMs: number | undefined,
  deadLetter: string | undefined,
): SettleMessage {
  const message: { -readonly [K in keyof SettleMessage]: SettleMessage[K] } = {
    adapter: source.adapter,
    clientId: source.clientId,
    kind: source.kind,
    destination: source.destination,
    consumer: source.consumer,
    id,
    attempt,
    outcome,
  };
  if (reason !== undefined) message.reason = reason;
  if (delayMs !== undefined) message.delayMs = delayMs;
  if (deadLetter !== undefined) message.deadLetter = deadLetter;
  return message;
}
