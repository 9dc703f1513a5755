/**
 * kafkajs errors as Omnibus errors: what a reconnection may fix becomes a retriable
 * `ConnectionError` (core waits for the connection and tries again), the rest a `PublishError`.
 */
import { ConnectionError, describeError, isOmnibusError, PublishError } from '@omnibus/core';

const CONNECTION_ERRORS = new Set([
  'KafkaJSConnectionError',
  'KafkaJSConnectionClosedError',
  'KafkaJSRequestTimeoutError',
  'KafkaJSNumberOfRetriesExceeded',
  'KafkaJSBrokerNotFound',
  'KafkaJSMetadataNotLoaded',
  'KafkaJSNoBrokerAvailableError',
  'KafkaJSLockTimeout',
  'KafkaJSTopicMetadataNotLoaded',
]);

/** The innermost cause of a kafkajs error (they nest through `cause`). */
export function rootCause(error: unknown): unknown {
  let current = error;
  for (let i = 0; i < 10; i++) {
    const cause = (current as { cause?: unknown } | null)?.cause;
    if (cause === undefined || cause === null || cause === current) break;
    current = cause;
  }
  return current;
}

/** True when the error means the cluster was not reachable or not ready, not that the request was wrong. */
export function isConnectionProblem(error: unknown): boolean {
  const name = (error as { name?: unknown } | null)?.name;
  if (typeof name === 'string' && CONNECTION_ERRORS.has(name)) return true;
  const root = rootCause(error) as { name?: unknown; retriable?: unknown } | null;
  return (typeof root?.name === 'string' && CONNECTION_ERRORS.has(root.name)) || root?.retriable === true;
}

/** Describes a kafkajs error with its root cause, for messages. */
export function explain(error: unknown): string {
  const root = rootCause(error);
  const outer = describeError(error);
  const inner = describeError(root);
  return root === error || outer.includes(inner) ? outer : `${outer} (${inner})`;
}

export function publishError(what: string, error: unknown): Error {
  if (isOmnibusError(error)) return error;
  if (isConnectionProblem(error)) return connectionError(what, error);
  return new PublishError(`${what}: ${explain(error)}`, { adapter: 'kafka', cause: error });
}

export function connectionError(what: string, error: unknown, retriable = true): ConnectionError {
  return new ConnectionError(`${what}: ${explain(error)}`, { adapter: 'kafka', cause: error, retriable });
}
