/**
 * Public types: what `send` takes and what handlers get, log messages, errors narrowed by `code`.
 *
 * The `expectTypeOf` and `@ts-expect-error` lines are checked by `pnpm typecheck` (this folder is in
 * core's tsconfig; CI runs it); vitest runs the same code on the in-memory broker, so each type is
 * also what arrives at run time.
 */
import { describe, expect, expectTypeOf, it } from 'vitest';
import { z } from 'zod';
import {
  type CapacityError,
  type ClosedError,
  type ConfigError,
  type ConnectionError,
  connect,
  isOmnibusError,
  type Log,
  type LogMessage,
  type LogPosition,
  type Message,
  type OmnibusError,
  type OmnibusErrors,
  type PublishError,
  type Queue,
  type TimeoutError,
  textCodec,
  type UnsupportedCapabilityError,
  ValidationError,
} from '../src/index.js';

const Order = z.object({
  id: z.string(),
  region: z.string().default('eu'),
  total: z.string().transform((text) => Number(text)),
});
interface OrderOut {
  id: string;
  region: string;
  total: number;
}

/** Resolves with the first message a handler gets. */
function first<M>(): { handler: (message: M) => void; received: Promise<M> } {
  let resolve!: (message: M) => void;
  const received = new Promise<M>((r) => {
    resolve = r;
  });
  return { handler: (message) => resolve(message), received };
}

describe('payload types follow the schema: send takes its input, handlers get its output', () => {
  it('queue: a defaulted field is optional on send, a transformed one takes its input type', async () => {
    const bus = await connect('memory://types-queue');
    try {
      const orders = bus.queue('orders', { schema: Order });
      expectTypeOf(orders.send).parameter(0).toEqualTypeOf<z.input<typeof Order>>();
      expectTypeOf<z.input<typeof Order>>().toEqualTypeOf<{
        id: string;
        region?: string | undefined;
        total: string;
      }>();
      // @ts-expect-error the post-transform type is not what is sent
      void orders.send({ id: 'X', total: 42 }).catch(() => undefined);
      // @ts-expect-error a field without a default stays required
      void orders.send({ total: '1' }).catch(() => undefined);

      const got = first<Message<OrderOut>>();
      await orders.consume((message) => {
        expectTypeOf(message.payload).toEqualTypeOf<z.output<typeof Order>>();
        expectTypeOf(message.payload).toEqualTypeOf<OrderOut>();
        got.handler(message);
      });
      await orders.send({ id: 'A-1', total: '42' });
      expect((await got.received).payload).toEqual({ id: 'A-1', region: 'eu', total: 42 });
    } finally {
      await bus.close();
    }
  });

  it('topic and log: publish and append take the input, subscribers and readers get the output', async () => {
    const bus = await connect('memory://types-topic-log');
    try {
      const shop = bus.topic('shop', { schema: Order });
      expectTypeOf(shop.publish).parameter(0).toEqualTypeOf<z.input<typeof Order>>();
      const published = first<Message<OrderOut>>();
      await shop.subscribe('#', (message) => {
        expectTypeOf(message.payload).toEqualTypeOf<OrderOut>();
        published.handler(message);
      });
      await shop.publish({ id: 'A-2', region: 'us', total: '7' });
      expect((await published.received).payload).toEqual({ id: 'A-2', region: 'us', total: 7 });

      const audit = bus.log('audit', { schema: Order });
      expectTypeOf(audit).toEqualTypeOf<Log<OrderOut, z.input<typeof Order>>>();
      await audit.append({ id: 'A-3', total: '3' });
      const read = first<LogMessage<OrderOut>>();
      const reader = await audit.read((message) => {
        expectTypeOf(message.payload).toEqualTypeOf<OrderOut>();
        read.handler(message);
      });
      expect((await read.received).payload).toEqual({ id: 'A-3', region: 'eu', total: 3 });
      await reader.close();
    } finally {
      await bus.close();
    }
  });

  it('without a schema one type does both, as before', () => {
    expectTypeOf<Queue<OrderOut>>().toEqualTypeOf<Queue<OrderOut, OrderOut>>();
    type Explicit = ReturnType<typeof explicitQueue>;
    expectTypeOf<Explicit>().toEqualTypeOf<Queue<OrderOut, OrderOut>>();
    type Untyped = ReturnType<typeof untypedQueue>;
    expectTypeOf<Untyped>().toEqualTypeOf<Queue<unknown, unknown>>();
    type Text = ReturnType<typeof textQueue>;
    expectTypeOf<Text>().toEqualTypeOf<Queue<string, string>>();
  });
});

type AnyBus = Awaited<ReturnType<typeof connect>>;
const explicitQueue = (bus: AnyBus) => bus.queue<OrderOut>('q');
const untypedQueue = (bus: AnyBus) => bus.queue('q');
const textQueue = (bus: AnyBus) => bus.queue('q', { codec: textCodec });

describe('log messages always have a position', () => {
  it('read() and messages() give LogMessage; queue and topic messages keep it optional', async () => {
    expectTypeOf<LogMessage['position']>().toEqualTypeOf<LogPosition>();
    expectTypeOf<Message['position']>().toEqualTypeOf<LogPosition | undefined>();
    const bus = await connect('memory://types-log-position');
    try {
      const audit = bus.log<{ step: string }>('audit', { partitions: 2 });
      const { position } = await audit.append({ step: 'paid' }, { key: 'A-1' });
      const read = first<LogMessage<{ step: string }>>();
      const reader = await audit.read((message) => {
        expectTypeOf(message.position).toEqualTypeOf<LogPosition>();
        read.handler(message);
      });
      const fromHandler = await read.received;
      expect(fromHandler.position.offset).toBe(position.offset);
      await reader.close();

      for await (const message of audit.messages({ from: 'earliest' })) {
        expectTypeOf(message).toEqualTypeOf<LogMessage<{ step: string }>>();
        expect(message.position).toEqual(position);
        break;
      }
    } finally {
      await bus.close();
    }
  });
});

/** What an application writes: one switch over `code`, each case typed as its class. */
function explain(error: unknown): string {
  if (!isOmnibusError(error)) return 'not ours';
  switch (error.code) {
    case 'OMNIBUS_CONFIG':
      expectTypeOf(error).toEqualTypeOf<ConfigError>();
      return `config: ${error.issues.join(', ')}`;
    case 'OMNIBUS_CONNECTION':
      expectTypeOf(error).toEqualTypeOf<ConnectionError>();
      // @ts-expect-error a ConnectionError has no issues
      void error.issues;
      return `connection (retriable: ${error.retriable})`;
    case 'OMNIBUS_UNSUPPORTED':
      expectTypeOf(error).toEqualTypeOf<UnsupportedCapabilityError>();
      return `unsupported: ${error.missing.map((m) => m.feature).join(', ')}`;
    case 'OMNIBUS_VALIDATION':
      expectTypeOf(error).toEqualTypeOf<ValidationError>();
      return `invalid: ${error.issues.join(', ')}`;
    case 'OMNIBUS_PUBLISH':
      expectTypeOf(error).toEqualTypeOf<PublishError>();
      return 'refused';
    case 'OMNIBUS_CAPACITY':
      expectTypeOf(error).toEqualTypeOf<CapacityError>();
      return `full at ${error.limit}`;
    case 'OMNIBUS_TIMEOUT':
      expectTypeOf(error).toEqualTypeOf<TimeoutError>();
      return `timed out after ${error.timeoutMs} ms`;
    case 'OMNIBUS_CLOSED':
      expectTypeOf(error).toEqualTypeOf<ClosedError>();
      return 'closed';
    default:
      // Every code has its case: a new code without a class and a case fails here.
      expectTypeOf(error).toBeNever();
      return 'unknown';
  }
}

describe('errors narrow by code', () => {
  it('switch (e.code) gives each class its own fields', async () => {
    expectTypeOf<OmnibusErrors['code']>().toEqualTypeOf<OmnibusError['code']>();
    expectTypeOf<ValidationError['code']>().toEqualTypeOf<'OMNIBUS_VALIDATION'>();
    const bus = await connect('memory://types-errors');
    try {
      const orders = bus.queue('orders', { schema: Order });
      const error = await orders.send({ id: 'A-9', total: 5 as unknown as string }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(ValidationError);
      expect(explain(error)).toMatch(/^invalid: total: /);
      expect(explain(new Error('x'))).toBe('not ours');
    } finally {
      await bus.close();
    }
    let closed: unknown;
    try {
      bus.queue('late');
    } catch (e) {
      closed = e;
    }
    expect(explain(closed)).toBe('closed');
  });
});
