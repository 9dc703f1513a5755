/**
 * `messages()`: a consumer as an async iterator. Advancing the loop acks the previous message
 * (unless it was settled explicitly); leaving the loop (break, throw, abort) requeues whatever
 * was not settled and closes the consumer.
 */
import type { Consumer, Handler, Message } from './types.js';

interface Held<T> {
  readonly message: Message<T>;
  readonly finish: () => void;
}

export function iterate<T>(
  start: (handler: Handler<T>, onEnd: () => void) => Promise<Consumer>,
  signal: AbortSignal | undefined,
): AsyncIterableIterator<Message<T>> {
  const buffer: Held<T>[] = [];
  let current: Held<T> | undefined;
  let consumer: Promise<Consumer> | undefined;
  let done = false;
  let wake: (() => void) | undefined;

  const handler: Handler<T> = (message) =>
    new Promise<void>((finish) => {
      if (done) {
        void message.requeue().finally(finish);
        return;
      }
      buffer.push({ message, finish });
      wake?.();
    });

  const finishAll = async (): Promise<void> => {
    const held = current === undefined ? buffer.splice(0) : [current, ...buffer.splice(0)];
    current = undefined;
    await Promise.all(
      held.map(async ({ message, finish }) => {
        try {
          if (!message.settled) await message.requeue();
        } finally {
          finish();
        }
      }),
    );
  };

  let stopping: Promise<IteratorResult<Message<T>>> | undefined;
  const stop = (): Promise<IteratorResult<Message<T>>> => {
    stopping ??= (async () => {
      done = true;
      wake?.();
      // Closing first makes requeued messages go back to the broker instead of round again.
      const closing = consumer?.then((c) => c.close());
      await finishAll();
      await closing;
      return { done: true, value: undefined };
    })();
    return stopping;
  };

  const onAbort = () => void stop();
  signal?.addEventListener('abort', onAbort, { once: true });

  const iterator: AsyncIterableIterator<Message<T>> = {
    async next() {
      if (done || signal?.aborted) return stop();
      consumer ??= start(handler, () => {
        // The consumer closed on its own (the bus closed): end the loop.
        done = true;
        wake?.();
      });
      await consumer;
      if (current !== undefined) {
        const previous = current;
        current = undefined;
        try {
          if (!previous.message.settled) await previous.message.ack();
        } finally {
          previous.finish();
        }
      }
      while (buffer.length === 0 && !done) {
        await new Promise<void>((resolve) => {
          wake = resolve;
        });
        wake = undefined;
      }
      if (done) return { done: true, value: undefined };
      current = buffer.shift()!;
      return { done: false, value: current.message };
    },
    async return() {
      signal?.removeEventListener('abort', onAbort);
      return stop();
    },
    async throw(error?: unknown) {
      signal?.removeEventListener('abort', onAbort);
      await stop();
      throw error;
    },
    [Symbol.asyncIterator]() {
      return iterator;
    },
  };
  return iterator;
}
