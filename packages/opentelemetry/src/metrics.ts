/**
 * The instruments, named by the OpenTelemetry messaging metric conventions where they exist and
 * `omnibus.*` for the rest. docs/observability.md lists them.
 */
import type { Counter, Histogram, Meter, UpDownCounter } from '@opentelemetry/api';

export const METRICS = {
  sent: 'messaging.client.sent.messages',
  consumed: 'messaging.client.consumed.messages',
  operationDuration: 'messaging.client.operation.duration',
  processDuration: 'messaging.process.duration',
  retried: 'omnibus.messaging.retried.messages',
  deadLettered: 'omnibus.messaging.dead_lettered.messages',
  active: 'omnibus.messaging.process.active',
} as const;

/** The bucket boundaries the messaging conventions advise for durations, in seconds. */
const DURATION_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10];

export interface Instruments {
  readonly sent: Counter;
  readonly consumed: Counter;
  readonly operationDuration: Histogram;
  readonly processDuration: Histogram;
  readonly retried: Counter;
  readonly deadLettered: Counter;
  readonly active: UpDownCounter;
}

export function createInstruments(meter: Meter): Instruments {
  const duration = (name: string, description: string) =>
    meter.createHistogram(name, {
      description,
      unit: 's',
      advice: { explicitBucketBoundaries: DURATION_BUCKETS },
    });
  return {
    sent: meter.createCounter(METRICS.sent, {
      description:
        'Messages handed to the broker by send, publish and append (failed ones carry error.type).',
      unit: '{message}',
    }),
    consumed: meter.createCounter(METRICS.consumed, {
      description: 'Messages delivered to a handler; a retried message counts once per attempt.',
      unit: '{message}',
    }),
    operationDuration: duration(
      METRICS.operationDuration,
      'Duration of a send, publish or append, from the call to the broker confirmation.',
    ),
    processDuration: duration(
      METRICS.processDuration,
      'Duration of a handler run, including the settlement it leads to.',
    ),
    retried: meter.createCounter(METRICS.retried, {
      description: 'Handler runs settled as a retry.',
      unit: '{message}',
    }),
    deadLettered: meter.createCounter(METRICS.deadLettered, {
      description: 'Messages sent to a dead-letter destination.',
      unit: '{message}',
    }),
    active: meter.createUpDownCounter(METRICS.active, {
      description: 'Handler runs in progress.',
      unit: '{message}',
    }),
  };
}
