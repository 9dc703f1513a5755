/**
 * The same checks on every set-up (memory and each real broker): spans in one trace with the right
 * parent, the attributes, a retry's second run, a dead letter's error, metrics, the handler's scope,
 * and `disable()`. Where the protocol cannot carry headers, the fallback: a new trace, nothing breaks.
 */
import { randomUUID } from 'node:crypto';
import type { Bus, Message } from '@omnibus/core';
import { SpanKind, SpanStatusCode } from '@opentelemetry/api';
import type { ReadableSpan } from '@opentelemetry/sdk-trace';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { ATTR, METRICS } from '../src/index.js';
import { setUpTelemetry, type Telemetry, until } from './harness.js';

export interface SetUp {
  /** `messaging.system` expected. */
  readonly system: string;
  readonly connect: () => Promise<Bus>;
  /** False where the protocol has no headers (MQTT 3.1.1): no context travels. */
  readonly carriesContext: boolean;
  /** Whether a message key can travel on a queue. @default true */
  readonly keys?: boolean;
  /** How long a message may take to arrive (Kafka group joins take seconds). */
  readonly timeoutMs: number;
}

const isProcess = (span: ReadableSpan) => span.kind === SpanKind.CONSUMER;
const isSend = (span: ReadableSpan) => span.kind === SpanKind.PRODUCER;

export function observabilityChecks(setUp: SetUp): void {
  let telemetry: Telemetry;
  const buses: Bus[] = [];
  const connect = async () => {
    const bus = await setUp.connect();
    buses.push(bus);
    return bus;
  };
  beforeEach(() => {
    telemetry = setUpTelemetry();
  });
  afterEach(async () => {
    for (const bus of buses.splice(0)) await bus.close();
    await telemetry.shutdown();
  });
  const name = (what: string) => `otel-${what}-${randomUUID().slice(0, 8)}`;

  it('puts the producer and consumer spans in one trace, the handler in the process span', async () => {
    const bus = await connect();
    const queue = bus.queue<{ n: number }>(name('q'));
    const app = telemetry.tracerProvider.getTracer('app');
    const received: Message<{ n: number }>[] = [];
    await queue.consume((message) => {
      app.startSpan('inside the handler').end();
      received.push(message);
    });
    const key = setUp.keys === false ? undefined : 'customer-1';
    // Application headers only where the protocol carries them (MQTT 3.1.1 refuses them).
    const { id } = await queue.send(
      { n: 1 },
      {
        ...(setUp.carriesContext ? { headers: { origin: 'test' } } : {}),
        ...(key === undefined ? {} : { key }),
      },
    );
    const [processSpan] = await telemetry.waitForSpans(isProcess, 1, setUp.timeoutMs);
    const [sendSpan] = telemetry.spans().filter(isSend);
    const inner = telemetry.spans().find((s) => s.name === 'inside the handler');

    // Both spans name their operation and the queue; the process span adds the attempt.
    const spans = [
      [sendSpan!, 'send', {}],
      [processSpan!, 'process', { [ATTR.attempt]: 1 }],
    ] as const;
    for (const [span, operation, more] of spans) {
      expect(span.name).toBe(`${operation} ${queue.name}`);
      expect(span.attributes).toMatchObject({
        [ATTR.system]: setUp.system,
        [ATTR.operationType]: operation,
        [ATTR.operationName]: operation,
        [ATTR.destination]: queue.name,
        [ATTR.messageId]: id,
        [ATTR.bodySize]: 7,
        ...more,
      });
    }
    if (key !== undefined) {
      const keyAttribute = setUp.system === 'kafka' ? ATTR.kafkaKey : ATTR.key;
      expect(sendSpan!.attributes[keyAttribute]).toBe(key);
      expect(processSpan!.attributes[keyAttribute]).toBe(key);
    }
    expect(processSpan!.events.map((e) => e.name)).toEqual(['settle ack']);
    expect(processSpan!.status.code).toBe(SpanStatusCode.UNSET);
    // The handler ran in the process span's context.
    expect(inner?.parentSpanContext?.spanId).toBe(processSpan!.spanContext().spanId);
    expect(inner?.spanContext().traceId).toBe(processSpan!.spanContext().traceId);

    if (setUp.carriesContext) {
      expect(received[0]!.headers.origin).toBe('test');
      expect(received[0]!.headers.traceparent).toMatch(/^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/);
      expect(processSpan!.spanContext().traceId).toBe(sendSpan!.spanContext().traceId);
      expect(processSpan!.parentSpanContext?.spanId).toBe(sendSpan!.spanContext().spanId);
      expect(processSpan!.links.map((l) => l.context.spanId)).toEqual([sendSpan!.spanContext().spanId]);
    } else {
      // Nothing carried: the process span starts a trace of its own, without parent or link.
      expect(received[0]!.headers.traceparent).toBeUndefined();
      expect(processSpan!.spanContext().traceId).not.toBe(sendSpan!.spanContext().traceId);
      expect(processSpan!.parentSpanContext).toBeUndefined();
      expect(processSpan!.links).toEqual([]);
    }
  });

  it("records a retried message's second run with attempt 2 and a dead-lettered run as an error", async () => {
    const bus = await connect();
    const queue = bus.queue<string>(name('retry'), { maxAttempts: 2 });
    await queue.consume((message) => {
      if (message.payload === 'dead' || message.attempt === 1) throw new TypeError(`no ${message.payload}`);
    });
    const once = await queue.send('once');
    const dead = await queue.send('dead');
    await telemetry.waitForSpans(isProcess, 4, setUp.timeoutMs * 2);
    const runs = (id: string) =>
      telemetry
        .spans()
        .filter((s) => isProcess(s) && s.attributes[ATTR.messageId] === id)
        .sort((a, b) => Number(a.attributes[ATTR.attempt]) - Number(b.attributes[ATTR.attempt]));
    const sendOf = (id: string) =>
      telemetry.spans().find((s) => isSend(s) && s.attributes[ATTR.messageId] === id)!;

    const [first, second] = runs(once.id);
    expect(first!.attributes[ATTR.attempt]).toBe(1);
    expect(first!.attributes[ATTR.errorType]).toBe('TypeError');
    expect(first!.status.code).toBe(SpanStatusCode.ERROR);
    expect(first!.events.map((e) => e.name)).toContain('settle retry');
    expect(first!.events.find((e) => e.name === 'exception')?.attributes?.['exception.type']).toBe(
      'TypeError',
    );
    expect(second!.attributes[ATTR.attempt]).toBe(2);
    expect(second!.attributes[ATTR.errorType]).toBeUndefined();
    expect(second!.status.code).toBe(SpanStatusCode.UNSET);
    expect(second!.events.map((e) => e.name)).toEqual(['settle ack']);

    const [, last] = runs(dead.id);
    expect(last!.attributes[ATTR.attempt]).toBe(2);
    expect(last!.status.code).toBe(SpanStatusCode.ERROR);
    expect(last!.attributes[ATTR.errorType]).toBe('TypeError');
    const settled = last!.events.find((e) => e.name === 'settle deadLetter');
    expect(settled?.attributes).toMatchObject({
      [ATTR.operationType]: 'settle',
      [ATTR.operationName]: 'deadLetter',
      [ATTR.deadLetter]: `${queue.name}.dlq`,
      [ATTR.settleReason]: 'no dead',
    });

    if (setUp.carriesContext) {
      // Every run, the retry included, is a child of the message's producer span.
      for (const run of [...runs(once.id), ...runs(dead.id)]) {
        const producer = sendOf(String(run.attributes[ATTR.messageId]));
        expect(run.parentSpanContext?.spanId).toBe(producer.spanContext().spanId);
      }
    }

    const where = { [ATTR.destination]: queue.name };
    await until(async () => (await telemetry.metric(METRICS.deadLettered, where)) === 1, 5000);
    expect(await telemetry.metric(METRICS.retried, where)).toBe(2);
    expect(await telemetry.metric(METRICS.deadLettered, where)).toBe(1);
    expect(await telemetry.metric(METRICS.consumed, where)).toBe(4);
    expect(await telemetry.metric(METRICS.processDuration, { ...where, [ATTR.errorType]: 'TypeError' })).toBe(
      3,
    );
  });

  it('counts what was sent and consumed', async () => {
    const bus = await connect();
    const queue = bus.queue<number>(name('count'));
    await queue.consume(() => undefined, { concurrency: 2 });
    for (let n = 0; n < 5; n++) await queue.send(n);
    await telemetry.waitForSpans(isProcess, 5, setUp.timeoutMs);
    const where = { [ATTR.destination]: queue.name, [ATTR.system]: setUp.system };
    await until(async () => (await telemetry.metric(METRICS.active, where)) === 0, 5000);
    expect(await telemetry.metric(METRICS.sent, { ...where, [ATTR.operationName]: 'send' })).toBe(5);
    expect(await telemetry.metric(METRICS.operationDuration, where)).toBe(5);
    expect(await telemetry.metric(METRICS.consumed, where)).toBe(5);
    expect(await telemetry.metric(METRICS.processDuration, where)).toBe(5);
    expect(await telemetry.metric(METRICS.retried, where)).toBe(0);
  });

  it('names the subject and the durable subscription of a topic', async () => {
    const bus = await connect();
    const topic = bus.topic<string>(name('t'));
    const durable = name('sub');
    await topic.subscribe('orders.*', () => undefined, { durable });
    await topic.publish('hello', { subject: 'orders.created' });
    const [processSpan] = await telemetry.waitForSpans(isProcess, 1, setUp.timeoutMs);
    const [sendSpan] = telemetry.spans().filter(isSend);
    const subject = setUp.system === 'rabbitmq' ? ATTR.rabbitmqRoutingKey : ATTR.subject;
    expect(sendSpan!.attributes).toMatchObject({
      [ATTR.operationName]: 'publish',
      [subject]: 'orders.created',
    });
    expect(processSpan!.attributes).toMatchObject({
      [ATTR.destination]: topic.name,
      [ATTR.subscription]: durable,
    });
    if (setUp.carriesContext) {
      expect(processSpan!.parentSpanContext?.spanId).toBe(sendSpan!.spanContext().spanId);
    }
  });

  it('names the partition, offset and consumer group of a log', async (test) => {
    const bus = await connect();
    if (bus.capabilities.log === 'none') return test.skip();
    const log = bus.log<string>(name('log'));
    const { position } = await log.append('entry', { key: 'k' });
    // A group where the broker has them (STOMP streams do not): then it is the consumer group name.
    const group = bus.capabilities.consumerGroups === 'none' ? undefined : name('group');
    await log.read(() => undefined, { from: 'earliest', ...(group === undefined ? {} : { group }) });
    const [processSpan] = await telemetry.waitForSpans(isProcess, 1, setUp.timeoutMs);
    const [sendSpan] = telemetry.spans().filter(isSend);
    const offset = setUp.system === 'kafka' ? ATTR.kafkaOffset : ATTR.offset;
    const at = { [ATTR.partition]: String(position.partition), [offset]: position.offset };
    expect(sendSpan!.attributes).toMatchObject({ [ATTR.operationName]: 'append', ...at });
    expect(processSpan!.attributes).toMatchObject(at);
    expect(processSpan!.attributes[ATTR.consumerGroup]).toBe(group);
    if (setUp.carriesContext) {
      expect(processSpan!.parentSpanContext?.spanId).toBe(sendSpan!.spanContext().spanId);
    }
  });

  it('stops when disabled', async () => {
    telemetry.instrumentation.disable();
    telemetry.instrumentation.disable();
    const bus = await connect();
    const queue = bus.queue<number>(name('off'));
    const headers: Record<string, string>[] = [];
    await queue.consume((message) => {
      headers.push({ ...message.headers });
    });
    await queue.send(1);
    await until(() => headers.length === 1, setUp.timeoutMs);
    expect(headers[0]!.traceparent).toBeUndefined();
    expect(telemetry.spans()).toEqual([]);
    expect(await telemetry.metric(METRICS.sent)).toBe(0);
  });
}
