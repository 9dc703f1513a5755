/**
 * Every attribute this package sets, in one table: the OpenTelemetry messaging semantic conventions
 * where they name one, `messaging.omnibus.*` for what only Omnibus knows. docs/observability.md
 * lists the same table for readers.
 */
import type { ProcessContext, SendContext } from '@omnibus/core';
import type { Attributes } from '@opentelemetry/api';

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

/** What is both a span attribute and a metric attribute: low cardinality only. */
export function sendMetricAttributes(c: SendContext): Attributes {
  return {
    [ATTR.system]: messagingSystem(c.adapter),
    [ATTR.operationType]: 'send',
    [ATTR.operationName]: c.operation,
    [ATTR.destination]: c.destination,
  };
}

export function sendSpanAttributes(c: SendContext): Attributes {
  const attributes: Attributes = {
    ...sendMetricAttributes(c),
    [ATTR.destinationKind]: c.kind,
    [ATTR.messageId]: c.id,
    [ATTR.bodySize]: c.bodySize,
  };
  keyAndSubject(attributes, c.adapter, c.key, c.subject);
  if (c.priority !== undefined) attributes[ATTR.priority] = c.priority;
  if (c.delayMs !== undefined) attributes[ATTR.delayMs] = c.delayMs;
  return attributes;
}

export function processMetricAttributes(c: ProcessContext): Attributes {
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

export function processSpanAttributes(c: ProcessContext): Attributes {
  const attributes: Attributes = {
    ...processMetricAttributes(c),
    [ATTR.destinationKind]: c.kind,
    [ATTR.messageId]: c.id,
    [ATTR.bodySize]: c.bodySize,
    [ATTR.attempt]: c.attempt,
    [ATTR.redelivered]: c.redelivered,
  };
  keyAndSubject(attributes, c.adapter, c.key, c.subject);
  if (c.position !== undefined) position(attributes, c.adapter, c.position);
  return attributes;
}

/** A log position: Kafka's partition and offset, or Omnibus's for other logs. */
export function position(
  attributes: Attributes,
  adapter: string,
  at: { readonly partition: number; readonly offset: number },
): void {
  attributes[ATTR.partition] = String(at.partition);
  attributes[adapter === 'kafka' ? ATTR.kafkaOffset : ATTR.offset] = at.offset;
}

function keyAndSubject(
  attributes: Attributes,
  adapter: string,
  key: string | undefined,
  subject: string | undefined,
): void {
  if (key !== undefined) attributes[adapter === 'kafka' ? ATTR.kafkaKey : ATTR.key] = key;
  if (subject !== undefined) {
    attributes[adapter === 'rabbitmq' ? ATTR.rabbitmqRoutingKey : ATTR.subject] = subject;
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
