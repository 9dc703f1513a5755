/**
 * The batch API on the in-memory broker, where the contract suite cannot reach: the send path's
 * guarantees per message (tracing, CapacityError), the batch consumer's early hand-over when a key
 * blocks, its one handler timeout per batch, its process events, and close with a batch still
 * forming.
 */
import { afterEach, describe, expect, it } from 'vitest';
import {
  type Adapter,
  type BatchOutcome,
  CapacityError,
  CHANNELS,
  ConnectionError,
  connect,
  type Message,
  memoryBroker,
  type OutgoingMessage,
  type ProcessContext,
  PublishError,
  type Queue,
  type QueueSpec,
  type SendContext,
  TimeoutError,
  type TopicSpec,
} from '../src/index.js';
import { memoryAs, tracedEvents, until } from './helpers.js';

const cleanups: (() => void | Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

let n = 0;
async function bus(query = '') {
  const b = await connect(`memory://batch-${process.pid}-${n++}${query}`);
  cleanups.push(() => b.close());
  return b;
}

/** The context of each start on the tracing channel `name` so far. */
function starts<C extends object>(name: string): () => C[] {
  const events = tracedEvents<C>(name, cleanups);
  return () => events.filter((e) => e.event === 'start').map((e) => e.context);
}

describe('sendBatch, publishBatch, appendBatch', () => {
  it('sends each message through the traced send path: one omnibus:send event per message', async () => {
    const sends = starts<SendContext>(CHANNELS.send);
    const b = await bus();
    const results = await b
      .queue<number>('q')
      .sendBatch([{ payload: 1, key: 'a' }, { payload: 2 }, { payload: 3 }]);
    const ids = results.map((r) => (r.ok ? r.id : 'failed'));
    expect(sends().map((s) => s.id)).toEqual(ids);
    expect(sends().map((s) => s.operation)).toEqual(['send', 'send', 'send']);
    expect(sends()[0]!.key).toBe('a');
    const appended = await b.log<number>('l').appendBatch([{ payload: 1 }, { payload: 2 }]);
    expect(
      sends()
        .slice(3)
        .map((s) => s.position),
    ).toEqual(appended.map((r) => (r.ok ? r.position : undefined)));
  });

  it('a full queue fails the messages that do not fit with CapacityError, the others are sent', async () => {
    const b = await bus('?maxQueueLength=3');
    const results = await b.queue<number>('q').sendBatch([0, 1, 2, 3, 4].map((payload) => ({ payload })));
    expect(results.map((r) => r.ok)).toEqual([true, true, true, false, false]);
    const failed = results[3]!;
    if (failed.ok) throw new Error('expected a failure');
    expect(failed.index).toBe(3);
    expect(failed.error).toBeInstanceOf(CapacityError);
  });

  it('a priority on a queue declared without maxPriority fails its entry alone, naming the index', async () => {
    const b = await bus();
    const results = await b.queue<number>('q').sendBatch([{ payload: 0 }, { payload: 1, priority: 3 }]);
    expect(results[0]!.ok).toBe(true);
    const failed = results[1]!;
    if (failed.ok) throw new Error('expected a failure');
    expect(failed.error.message).toMatch(/entry 1 is invalid: .*maxPriority/);
  });

  it("stamps a batch's messages with the time it was handed over, not earlier", async () => {
    const b = await bus();
    const queue = b.queue<number>('stamped');
    const got: Message<number>[] = [];
    await queue.consume((m) => {
      got.push(m);
    });
    const before = Date.now();
    await queue.sendBatch([0, 1, 2].map((payload) => ({ payload })));
    const after = Date.now();
    await until(() => got.length === 3);
    for (const m of got) {
      expect(m.timestamp.getTime()).toBeGreaterThanOrEqual(before);
      expect(m.timestamp.getTime()).toBeLessThanOrEqual(after);
    }
  });

  it('rejects with ClosedError on a closed bus', async () => {
    const b = await bus();
    const queue = b.queue('q');
    await b.close();
    await expect(queue.sendBatch([{ payload: 1 }])).rejects.toMatchObject({ code: 'OMNIBUS_CLOSED' });
  });
});

describe("sendBatch and publishBatch through the adapter's own batch call", () => {
  /** The memory adapter with its batch calls and sends counted, and `sendBatch` answered by `answer` when given. */
  function counted(answer?: (messages: readonly OutgoingMessage[], inner: Adapter) => Promise<BatchOutcome>) {
    const calls = { send: 0, sendBatch: [] as number[], publish: 0, publishBatch: [] as number[] };
    const factory = memoryAs('counted', (inner) => ({
      send: (queue: QueueSpec, message: OutgoingMessage) => {
        calls.send++;
        return inner.send(queue, message);
      },
      sendBatch: (queue: QueueSpec, messages: readonly OutgoingMessage[]) => {
        calls.sendBatch.push(messages.length);
        return answer === undefined ? inner.sendBatch!(queue, messages) : answer(messages, inner);
      },
      publish: (topic: TopicSpec, message: OutgoingMessage) => {
        calls.publish++;
        return inner.publish(topic, message);
      },
      publishBatch: (topic: TopicSpec, messages: readonly OutgoingMessage[]) => {
        calls.publishBatch.push(messages.length);
        return inner.publishBatch!(topic, messages);
      },
    }));
    return { calls, factory };
  }

  /** The payloads of the first `count` messages a consumer of `queue` gets, sorted. */
  async function payloads(queue: Queue<number>, count: number): Promise<number[]> {
    const got: number[] = [];
    await queue.consume((m) => {
      got.push(m.payload);
    });
    await until(() => got.length === count);
    return got.sort();
  }

  async function countedBus(factory: ReturnType<typeof counted>['factory'], options = {}) {
    const b = await connect(`counted://batch-${process.pid}-${n++}`, { adapters: [factory], ...options });
    cleanups.push(() => b.close());
    return b;
  }

  it('hands the valid messages to the adapter in one call; an invalid entry fails alone and is not sent', async () => {
    const { calls, factory } = counted();
    const b = await countedBus(factory);
    const queue = b.queue<number>('q');
    const got: number[] = [];
    await queue.consume((m) => {
      got.push(m.payload);
    });
    const results = await queue.sendBatch([{ payload: 0 }, { payload: 1, priority: 3 }, { payload: 2 }]);
    expect(results.map((r) => r.ok)).toEqual([true, false, true]);
    expect(calls.sendBatch).toEqual([2]);
    expect(calls.send).toBe(0);
    await until(() => got.length === 2);
    expect(got).toEqual([0, 2]);
    const ids = results.flatMap((r) => (r.ok ? [r.id] : []));
    expect(new Set(ids).size).toBe(2);

    const topic = b.topic<number>('t');
    const heard: number[] = [];
    await topic.subscribe('a.*', (m) => {
      heard.push(m.payload);
    });
    const published = await topic.publishBatch([
      { payload: 0, subject: 'a.x' },
      { payload: 1, subject: 'a..' },
      { payload: 2, subject: 'b.x' },
      { payload: 3, subject: 'a.y' },
    ]);
    expect(published.map((r) => r.ok)).toEqual([true, false, true, true]);
    expect(calls.publishBatch).toEqual([3]);
    expect(calls.publish).toBe(0);
    await until(() => heard.length === 2);
    expect(heard).toEqual([0, 3]);
  });

  it('sends again alone, once reconnected, a message the adapter failed with a retriable ConnectionError; other failures stay', async () => {
    const { calls, factory } = counted(async (messages, inner) => {
      const outcome: (Error | undefined)[] = [];
      for (const [i, message] of messages.entries()) {
        if (i === 1) outcome.push(new ConnectionError('the connection went before it was confirmed'));
        else if (i === 2) outcome.push(new PublishError('the broker refused it'));
        else {
          await inner.send({ name: 'q' }, message);
          outcome.push(undefined);
        }
      }
      return outcome;
    });
    const b = await countedBus(factory);
    const queue = b.queue<number>('q');
    const results = await queue.sendBatch([0, 1, 2, 3].map((payload) => ({ payload })));
    expect(results.map((r) => r.ok)).toEqual([true, true, false, true]);
    const refused = results[2]!;
    if (refused.ok) throw new Error('expected a failure');
    expect(refused.index).toBe(2);
    expect(refused.error).toBeInstanceOf(PublishError);
    expect(calls.sendBatch).toEqual([4]);
    expect(calls.send).toBe(1);
    expect(await payloads(queue, 3)).toEqual([0, 1, 3]);
  });

  it('sends each message again alone when the adapter rejects the whole batch with a retriable ConnectionError', async () => {
    let refused = 0;
    const { calls, factory } = counted(() => {
      refused++;
      return Promise.reject(new ConnectionError('the connection went before anything was written'));
    });
    const b = await countedBus(factory);
    const queue = b.queue<number>('q');
    const results = await queue.sendBatch([0, 1, 2].map((payload) => ({ payload })));
    expect(results.map((r) => r.ok)).toEqual([true, true, true]);
    expect(refused).toBe(1);
    expect(calls.send).toBe(3);
    expect(await payloads(queue, 3)).toEqual([0, 1, 2]);
  });

  it('fails every message with the error the adapter rejected the whole batch with, when it is not retriable', async () => {
    const { calls, factory } = counted(() =>
      Promise.reject(new PublishError('the broker refused the batch')),
    );
    const b = await countedBus(factory);
    const results = await b.queue<number>('q').sendBatch([{ payload: 0 }, { payload: 1 }]);
    expect(results.map((r) => (r.ok ? 'ok' : `${r.index} ${r.error.name}`))).toEqual([
      '0 PublishError',
      '1 PublishError',
    ]);
    expect(calls.send).toBe(0);
  });

  it('fails every message with TimeoutError when the adapter never answers the batch, within sendBuffer.timeoutMs', async () => {
    const { factory } = counted(() => new Promise<BatchOutcome>(() => undefined));
    // closeTimeoutMs: close waits that long for the batch the adapter still holds.
    const b = await countedBus(factory, { sendBuffer: { timeoutMs: 150 }, closeTimeoutMs: 200 });
    const started = Date.now();
    const results = await b.queue<number>('q').sendBatch([{ payload: 0 }, { payload: 1 }]);
    expect(Date.now() - started).toBeGreaterThanOrEqual(140);
    expect(results.map((r) => (r.ok ? 'ok' : r.error.name))).toEqual(['TimeoutError', 'TimeoutError']);
    expect(results.map((r) => (r.ok ? -1 : r.index))).toEqual([0, 1]);
  });

  it("while the broker restarts, a batch's messages wait for the reconnect one by one, within sendBuffer.maxMessages", async () => {
    const name = `batch-buffer-${process.pid}-${n++}`;
    const { calls, factory } = counted();
    const b = await connect(`counted://${name}`, { adapters: [factory], sendBuffer: { maxMessages: 3 } });
    cleanups.push(() => b.close());
    const queue = b.queue<number>('q');
    const restarted = memoryBroker(name).restart(100);
    await until(() => b.health().state === 'reconnecting');
    const results = await queue.sendBatch([0, 1, 2, 3, 4].map((payload) => ({ payload })));
    await restarted;
    expect(results.map((r) => (r.ok ? 'ok' : r.error.name))).toEqual([
      'ok',
      'ok',
      'ok',
      'CapacityError',
      'CapacityError',
    ]);
    expect(calls.sendBatch).toEqual([]);
  });

  it('a batch sent while the broker restarts waits for the reconnect, then every message arrives once', async () => {
    const name = `batch-restart-${process.pid}-${n++}`;
    const b = await connect(`memory://${name}`);
    cleanups.push(() => b.close());
    const queue = b.queue<number>('q');
    const got: number[] = [];
    await queue.consume((m) => {
      got.push(m.payload);
    });
    const restarted = memoryBroker(name).restart(100);
    await until(() => b.health().state === 'reconnecting');
    const results = await queue.sendBatch(Array.from({ length: 50 }, (_, payload) => ({ payload })));
    await restarted;
    expect(results.every((r) => r.ok)).toBe(true);
    await until(() => got.length === 50);
    expect(got.sort((x, y) => x - y)).toEqual(Array.from({ length: 50 }, (_, i) => i));
  });
});

describe('batch consumption', () => {
  it('hands a batch over at once when the next message waits behind a key in it, not after waitMs', async () => {
    const b = await bus();
    const queue = b.queue<number>('q');
    await queue.sendBatch(Array.from({ length: 20 }, (_, i) => ({ payload: i, key: 'same' })));
    const sizes: number[] = [];
    const order: number[] = [];
    const consumer = await queue.consume(
      (batch: Message<number>[]) => {
        sizes.push(batch.length);
        for (const m of batch) order.push(m.payload);
      },
      { batch: { size: 10, waitMs: 60_000 } },
    );
    // One message of a key at a time: batches of one, each handed over as soon as the next of its
    // key waits behind it (a minute of waitMs would fail the wait below).
    await until(() => order.length === 19, 10_000, '19 messages');
    // The last has nothing behind it: it waits out waitMs, or the consumer closing.
    expect(order.length).toBe(19);
    await consumer.close();
    expect(order.length).toBe(20);
    expect(sizes.every((size) => size === 1)).toBe(true);
    expect(order).toEqual([...Array(20).keys()]);
  });

  it('times out each message of a batch whose handler runs too long: they are retried', async () => {
    const b = await bus();
    const queue = b.queue<string>('q', { maxAttempts: 3 });
    const attempts: string[] = [];
    await queue.consume(
      async (batch: Message<string>[]) => {
        for (const m of batch) attempts.push(`${m.payload}#${m.attempt}`);
        if (batch.some((m) => m.attempt === 1)) await new Promise((resolve) => setTimeout(resolve, 1000));
      },
      { batch: { size: 2, waitMs: 50 }, handlerTimeoutMs: 100 },
    );
    await queue.sendBatch([{ payload: 'a' }, { payload: 'b' }]);
    await until(() => attempts.includes('a#2') && attempts.includes('b#2'), 5000, 'second attempts');
  });

  it('counts the handler timeout from the handler call, not from the wait for the batch to fill', async () => {
    const b = await bus();
    const queue = b.queue<string>('q');
    const seen: string[] = [];
    await queue.consume(
      (batch: Message<string>[]) => {
        for (const m of batch) seen.push(`${m.payload}#${m.attempt}`);
      },
      // The first message waits 400 ms for company, longer than the handler may take.
      { batch: { size: 10, waitMs: 400 }, handlerTimeoutMs: 150 },
    );
    await queue.send('a');
    await until(() => seen.length > 0, 5000, 'the batch');
    await until(() => b.health().consumers[0]!.handled === 1, 5000, 'the ack');
    expect(seen).toEqual(['a#1']);
    expect(b.health().consumers[0]!.retried).toBe(0);
  });

  it("a batch that times out aborts each message's signal with TimeoutError, and late settlement changes nothing", async () => {
    const b = await bus();
    const queue = b.queue<string>('q', { maxAttempts: 2 });
    const reasons: unknown[] = [];
    const attempts: string[] = [];
    let release!: () => void;
    const late = new Promise<void>((resolve) => {
      release = resolve;
    });
    await queue.consume(
      async (batch: Message<string>[]) => {
        for (const m of batch) attempts.push(`${m.payload}#${m.attempt}`);
        if (batch[0]!.attempt > 1) return;
        await Promise.all(
          batch.map(
            (m) =>
              new Promise<void>((resolve) =>
                m.signal.addEventListener('abort', () => {
                  reasons.push(m.signal.reason);
                  resolve();
                }),
              ),
          ),
        );
        await late;
        // After the timeout: this ack must not undo the retry the timeout led to.
        await Promise.all(batch.map((m) => m.ack()));
      },
      { batch: { size: 2, waitMs: 1000 }, handlerTimeoutMs: 100 },
    );
    await queue.sendBatch([{ payload: 'a' }, { payload: 'b' }]);
    await until(() => reasons.length === 2, 5000, 'both aborted');
    expect(reasons.every((reason) => reason instanceof TimeoutError)).toBe(true);
    await until(() => attempts.includes('a#2') && attempts.includes('b#2'), 5000, 'second attempts');
    release();
    await until(() => b.health().consumers[0]!.handled === 2, 5000, 'the second attempts acked');
    expect(b.health().consumers[0]!.retried).toBe(2);
    expect(attempts.sort()).toEqual(['a#1', 'a#2', 'b#1', 'b#2']);
  });

  it("each message's omnibus:process event ends when its batch is done, with the batch's failure", async () => {
    const events = tracedEvents<ProcessContext>(CHANNELS.process, cleanups);
    const b = await bus();
    const queue = b.queue<string>('q', { maxAttempts: 2 });
    let finish!: () => void;
    const gate = new Promise<void>((resolve) => {
      finish = resolve;
    });
    let calls = 0;
    await queue.consume(
      async (batch: Message<string>[]) => {
        calls++;
        await gate;
        if (batch[0]!.attempt === 1) throw new Error('first attempt fails');
      },
      { batch: { size: 3, waitMs: 50 } },
    );
    await queue.sendBatch([{ payload: 'a' }, { payload: 'b' }, { payload: 'c' }]);
    await until(() => calls === 1, 5000, 'the first batch');
    const ended = () => events.filter((e) => e.event === 'asyncEnd');
    expect(events.filter((e) => e.event === 'start')).toHaveLength(3);
    // The batch handler is still running: no message's process has ended.
    expect(ended()).toHaveLength(0);
    finish();
    await until(() => ended().length === 6, 5000, 'both attempts of the three');
    const firsts = ended().filter((e) => e.context.attempt === 1);
    expect(firsts.map((e) => e.context.outcome)).toEqual(['retry', 'retry', 'retry']);
    expect(firsts.every((e) => e.context.failure instanceof Error)).toBe(true);
    const seconds = ended().filter((e) => e.context.attempt === 2);
    expect(seconds.map((e) => e.context.outcome)).toEqual(['ack', 'ack', 'ack']);
  });

  it('close hands over a batch still forming instead of waiting out waitMs', async () => {
    const b = await bus();
    const queue = b.queue<number>('q');
    const got: number[] = [];
    const consumer = await queue.consume(
      (batch: Message<number>[]) => {
        for (const m of batch) got.push(m.payload);
      },
      { batch: { size: 100, waitMs: 60_000 }, prefetch: 100 },
    );
    await queue.send(1);
    await until(() => (b.health().consumers[0]?.inFlight ?? 0) === 1, 5000, 'the message held');
    const started = Date.now();
    await consumer.close();
    expect(Date.now() - started).toBeLessThan(10_000);
    expect(got).toEqual([1]);
  });

  it('refuses bad batch options with ValidationError naming them', async () => {
    const b = await bus();
    const queue = b.queue('q');
    const noop = async () => undefined;
    await expect(queue.consume(noop, { batch: { size: 2, waitMs: -1 } })).rejects.toThrow(/batch\.waitMs/);
    await expect(queue.consume(noop, { batch: { size: 2, linger: 1 } as never })).rejects.toThrow(/linger/);
    await expect(queue.consume(noop, { batch: { size: 5_000 }, concurrency: 3 })).rejects.toThrow(
      /concurrency × batch\.size/,
    );
  });
});
