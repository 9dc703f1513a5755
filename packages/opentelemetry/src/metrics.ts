/**
 * The instruments, named by the OpenTelemetry messaging metric conventions where they exist and
 * `omnibus.*` for the rest. docs/observability.md lists them.
 */
import type { Attributes, Histogram, Meter, ObservableResult } from '@opentelemetry/api';

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

/**
 * A count per attribute set, kept here and read by the meter when it collects. Counting a message
 * is then a map look-up by the identity of an attribute set made once per destination, where a
 * synchronous counter would hash the attribute set on every message (measured: the largest cost of
 * the instrumentation).
 */
export class Tally {
  private readonly points = new Map<Attributes, Point>();

  /** `attributes` must be one object per set, made once (the caller caches it). */
  add(attributes: Attributes, n = 1): void {
    const point = this.points.get(attributes);
    if (point === undefined) this.points.set(attributes, new Point(n));
    else point.value += n;
  }

  observe = (result: ObservableResult): void => {
    for (const [attributes, point] of this.points) result.observe(point.value, attributes);
  };
}

class Point {
  constructor(public value: number) {}
}

export interface Instruments {
  readonly sent: Tally;
  readonly consumed: Tally;
  readonly operationDuration: Histogram;
  readonly processDuration: Histogram;
  readonly retried: Tally;
  readonly deadLettered: Tally;
  readonly active: Tally;
}

export function createInstruments(meter: Meter): Instruments {
  const duration = (name: string, description: string) =>
    meter.createHistogram(name, {
      description,
      unit: 's',
      advice: { explicitBucketBoundaries: DURATION_BUCKETS },
    });
  const counter = (name: string, description: string, upDown = false): Tally => {
    const tally = new Tally();
    const options = { description, unit: '{message}' };
    const instrument = upDown
      ? meter.createObservableUpDownCounter(name, options)
      : meter.createObservableCounter(name, options);
    instrument.addCallback(tally.observe);
    return tally;
  };
  return {
    sent: counter(
      METRICS.sent,
      'Messages handed to the broker by send, publish and append (failed ones carry error.type).',
    ),
    consumed: counter(
      METRICS.consumed,
      'Messages delivered to a handler; a retried message counts once per attempt.',
    ),
    operationDuration: duration(
      METRICS.operationDuration,
      'Duration of a send, publish or append, from the call to the broker confirmation.',
    ),
    processDuration: duration(
      METRICS.processDuration,
      'Duration of a handler run, including the settlement it leads to.',
    ),
    retried: counter(METRICS.retried, 'Handler runs settled as a retry.'),
    deadLettered: counter(METRICS.deadLettered, 'Messages sent to a dead-letter destination.'),
    active: counter(METRICS.active, 'Handler runs in progress.', true),
  };
}
