/**
 * Every attribute this package sets, in one table: the OpenTelemetry messaging semantic conventions
 * where they name one, `messaging.omnibus.*` for what only Omnibus knows. docs/observability.md
 * lists the same table for readers.
 */
import type { ConsumedMessage, ProcessContext, SendContext } from '@omnibus/core';
import type { Attributes, Span } from '@opentelemetry/api';

export const ATTR = {
  system: 'messaging.system',
  operationType: 'messaging.operation.type',
  operationName: 'messaging.operation.name',
  destination: 'messaging.destination.name',
  partition: 'messaging.destination.partition.id',
  subscription: 'messaging.destination.subscription.name',
  consumerGroup: 'messaging.consumer.group.name',
  messageId: 'messaging.message.id',
  bodySize: 'messaging.message.body.size',
  kafkaKey: 'messaging.kafka.message.key',
  kafkaOffset: 'messaging.kafka.offset',
  rabbitmqRoutingKey: 'messaging.rabbitmq.destination.routing_key',
  errorType: 'error.type',
  // Omnibus's own: the semantic conventions have no portable name for these.
  destinationKind: 'messaging.omnibus.destination.kind',
  attempt: 'messaging.omnibus.attempt',
  redelivered: 'messaging.omnibus.redelivered',
  key: 'messaging.omnibus.message.key',
  subject: 'messaging.omnibus.message.subject',
  offset: 'messaging.omnibus.message.offset',
  priority: 'messaging.omnibus.message.priority',
  delayMs: 'messaging.omnibus.message.delay_ms',
  settleReason: 'messaging.omnibus.settle.reason',
  retryDelayMs: 'messaging.omnibus.settle.retry_delay_ms',
  deadLetter: 'messaging.omnibus.settle.dead_letter',
} as const;

/** `messaging.system`: the adapter name (`kafka`, `rabbitmq`, `mqtt`, `stomp`, `memory`, …). */
export function messagingSystem(adapter: string): string {
  return adapter;
}

/**
 * What a send span starts with and its metrics carry: low cardinality only, the same for every
 * message to one destination, so made once per destination (samplers see these).
 */
export function sendMetricAttributes(c: SendContext): Attributes {
  return {
    [ATTR.system]: messagingSystem(c.adapter),
    [ATTR.operationType]: 'send',
    [ATTR.operationName]: c.operation,
    [ATTR.destination]: c.destination,
  };
}

/** The rest of a send span's attributes, set on a span that records only. */
export function setSendSpanAttributes(span: Span, c: SendContext): void {
  span.setAttribute(ATTR.destinationKind, c.kind);
  span.setAttribute(ATTR.messageId, c.id);
  span.setAttribute(ATTR.bodySize, c.bodySize);
  keyAndSubject(span, c.adapter, c.key, c.subject);
  if (c.priority !== undefined) span.setAttribute(ATTR.priority, c.priority);
  if (c.delayMs !== undefined) span.setAttribute(ATTR.delayMs, c.delayMs);
}

/** As `sendMetricAttributes`, for a handler run: once per destination and consumer. */
export function processMetricAttributes(c: ConsumedMessage): Attributes {
  const attributes: Attributes = {
    [ATTR.system]: messagingSystem(c.adapter),
    [ATTR.operationType]: 'process',
    [ATTR.operationName]: 'process',
    [ATTR.destination]: c.destination,
  };
  // A log group is a consumer group; a durable topic subscription is a subscription.
  if (c.consumer !== undefined) {
    attributes[c.kind === 'topic' ? ATTR.subscription : ATTR.consumerGroup] = c.consumer;
  }
  return attributes;
}

/** The rest of a process span's attributes, set on a span that records only. */
export function setProcessSpanAttributes(span: Span, c: ProcessContext): void {
  span.setAttribute(ATTR.destinationKind, c.kind);
  span.setAttribute(ATTR.messageId, c.id);
  span.setAttribute(ATTR.bodySize, c.bodySize);
  span.setAttribute(ATTR.attempt, c.attempt);
  span.setAttribute(ATTR.redelivered, c.redelivered);
  keyAndSubject(span, c.adapter, c.key, c.subject);
  if (c.position !== undefined) position(span, c.adapter, c.position);
}

/** Where retries and dead letters are counted: the destination and its consumer. */
export function settleMetricAttributes(c: ConsumedMessage): Attributes {
  const attributes: Attributes = {
    [ATTR.system]: messagingSystem(c.adapter),
    [ATTR.destination]: c.destination,
  };
  if (c.consumer !== undefined) {
    attributes[c.kind === 'topic' ? ATTR.subscription : ATTR.consumerGroup] = c.consumer;
  }
  return attributes;
}

/** A log position: Kafka's partition and offset, or Omnibus's for other logs. */
export function position(
  span: Span,
  adapter: string,
  at: { readonly partition: number; readonly offset: number },
): void {
  span.setAttribute(ATTR.partition, String(at.partition));
  span.setAttribute(adapter === 'kafka' ? ATTR.kafkaOffset : ATTR.offset, at.offset);
}

function keyAndSubject(
  span: Span,
  adapter: string,
  key: string | undefined,
  subject: string | undefined,
): void {
  if (key !== undefined) span.setAttribute(adapter === 'kafka' ? ATTR.kafkaKey : ATTR.key, key);
  if (subject !== undefined) {
    span.setAttribute(adapter === 'rabbitmq' ? ATTR.rabbitmqRoutingKey : ATTR.subject, subject);
  }
}

/**
 * `error.type`: the error's class name (`TimeoutError`, `PublishError`, `ValidationError`, …),
 * low-cardinality as the conventions ask; `_OTHER` when there is no error object.
 */
export function errorType(error: unknown): string {
  if (error instanceof Error) {
    return error.name !== 'Error' ? error.name : error.constructor.name;
  }
  return '_OTHER';
}
