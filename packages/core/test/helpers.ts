import { tracingChannel } from 'node:diagnostics_channel';
import { delay } from '../src/deadlines.js';
import { type Adapter, type AdapterFactory, memory } from '../src/index.js';

/**
 * Waits for a condition, polling on timers (so it can only pass while timers still fire); fails with
 * `what` after `timeoutMs`. Never a fixed sleep.
 */
export async function until(condition: () => boolean, timeoutMs = 5000, what = 'condition'): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > end) throw new Error(`${what} not met within ${timeoutMs} ms`);
    await delay(2);
  }
}

/**
 * The memory adapter as `name://` (any host, its URL options ignored), with what `overrides` gives
 * in place of the adapter's own members: core's side of an adapter that behaves otherwise.
 */
export function memoryAs(
  name: string,
  overrides: (inner: Adapter) => Readonly<Partial<Record<keyof Adapter, unknown>>>,
): AdapterFactory {
  return {
    name,
    schemes: [name],
    hostOptional: true,
    async create(target, context) {
      const adapter = await memory().create({ ...target, options: {} }, context);
      const own: Readonly<Partial<Record<string | symbol, unknown>>> = overrides(adapter);
      return new Proxy(adapter, {
        get: (inner, key) => (Object.hasOwn(own, key) ? own[key] : Reflect.get(inner, key)),
      }) as Adapter;
    },
  };
}

/** Every event of the tracing channel `name`, with its context, in order; unsubscribed by `cleanups`. */
export function tracedEvents<C extends object>(name: string, cleanups: (() => void)[]) {
  const events: { event: string; context: C }[] = [];
  const handlers = {
    start: (context: unknown) => events.push({ event: 'start', context: context as C }),
    end: (context: unknown) => events.push({ event: 'end', context: context as C }),
    asyncStart: (context: unknown) => events.push({ event: 'asyncStart', context: context as C }),
    asyncEnd: (context: unknown) => events.push({ event: 'asyncEnd', context: context as C }),
    error: (context: unknown) => events.push({ event: 'error', context: context as C }),
  };
  const traced = tracingChannel(name);
  traced.subscribe(handlers);
  cleanups.push(() => traced.unsubscribe(handlers));
  return events;
}
