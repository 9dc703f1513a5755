/**
 * Spies: what was sent and how each message was handled, on any bus (memory or a real broker),
 * from core's diagnostics channels (docs/instrumentation.md). A test awaits an outcome instead of
 * polling with sleeps.
 */
import { channel, tracingChannel } from 'node:diagnostics_channel';
import {
  BusImpl,
  CHANNELS,
  type DestinationKind,
  type LogPosition,
  type ProcessContext,
  type SendContext,
  type SettleMessage,
} from '@omnibus/core';
import { fakeTimersOn, real } from './timers.js';

export type SpyOutcome = 'sent' | 'acked' | 'retried' | 'deadLettered' | 'requeued';

/** A message the broker confirmed (send, publish or append). */
export interface SentRecord {
  readonly outcome: 'sent';
  readonly kind: DestinationKind;
  readonly destination: string;
  readonly id: string;
  readonly key: string | undefined;
  readonly subject: string | undefined;
  readonly priority: number | undefined;
  readonly headers: Readonly<Record<string, string>>;
  readonly position: LogPosition | undefined;
  readonly clientId: string;
}

/** One handler run and how it was settled. */
export interface HandledRecord {
  readonly outcome: Exclude<SpyOutcome, 'sent'>;
  readonly kind: DestinationKind;
  readonly destination: string;
  /** The durable subscription or log group, when there is one. */
  readonly consumer: string | undefined;
  readonly id: string;
  readonly attempt: number;
  readonly redelivered: boolean;
  readonly key: string | undefined;
  readonly subject: string | undefined;
  readonly headers: Readonly<Record<string, string>>;
  readonly position: LogPosition | undefined;
  /** Why, for retries and dead letters. */
  readonly reason: string | undefined;
  /** Retries: how long until the next attempt. */
  readonly delayMs: number | undefined;
  /** Dead letters: the queue it went to. */
  readonly deadLetter: string | undefined;
  readonly clientId: string;
}

export type SpyRecord = SentRecord | HandledRecord;

export interface SpyQuery {
  readonly outcome: SpyOutcome;
  readonly destination?: string;
  readonly id?: string;
  /** Only records for which this holds (a header, a key, an attempt…). */
  readonly where?: (record: SpyRecord) => boolean;
}

export interface SpyResult {
  readonly outcome: SpyOutcome;
  readonly id: string;
  readonly destination: string;
  readonly kind: DestinationKind;
  /** The record that matched. */
  readonly record: SpyRecord;
  /** Handler runs of this message at this destination so far (a retried message's several). */
  readonly attempts: number;
  /** Those runs, in order. */
  readonly history: readonly HandledRecord[];
}

export interface WaitOptions {
  /** @default 5000 (real time: fake timers neither advance nor stop it) */
  readonly timeoutMs?: number;
}

export interface Spy extends Disposable, AsyncDisposable {
  /** Confirmed sends, in order. */
  readonly sent: readonly SentRecord[];
  /** Settled handler runs, in order. */
  readonly handled: readonly HandledRecord[];
  /** The first record, past or future, that matches; rejects after the timeout saying what it saw. */
  waitFor(query: SpyQuery, options?: WaitOptions): Promise<SpyResult>;
  /** Forgets what was recorded (waits under way go on). */
  clear(): void;
  /** Stops recording; waits under way reject. Idempotent. */
  stop(): void;
}

/** The error of a `waitFor` that timed out or whose spy stopped. */
export class SpyTimeoutError extends Error {
  override readonly name = 'SpyTimeoutError';
}

/** A spy on one bus: it sees the messages that bus sends and handles (matched by its `clientId`). */
export function spy(bus: object): Spy {
  return new Recorder(clientIdOf(bus));
}

/** A spy on every bus of this process. */
export function createSpy(): Spy {
  return new Recorder(undefined);
}

const clientIds = new WeakMap<object, string>();

/** Lets `spy()` recognise a bus that is not core's own (a test bus delegating to one). */
export function registerSpyTarget(bus: object, clientId: string): void {
  clientIds.set(bus, clientId);
}

function clientIdOf(bus: object): string {
  const known = clientIds.get(bus);
  if (known !== undefined) return known;
  if (bus instanceof BusImpl) return bus.options.clientId;
  throw new TypeError(
    '[omnibus] [testing] spy(bus) takes a bus from connect() or createTestBus(); createSpy() sees every bus',
  );
}

interface Waiter {
  readonly query: SpyQuery;
  readonly resolve: (result: SpyResult) => void;
  readonly reject: (error: Error) => void;
}

class Recorder implements Spy {
  readonly sent: SentRecord[] = [];
  readonly handled: HandledRecord[] = [];
  private readonly records: SpyRecord[] = [];
  private readonly waiters = new Set<Waiter>();
  private readonly running = new Map<string, ProcessContext>();
  private stopped = false;
  private readonly sendHandlers = handlers({ asyncEnd: (c) => this.onSent(c as SendContext) });
  private readonly processHandlers = handlers({ start: (c) => this.onProcess(c as ProcessContext) });
  private readonly onSettle = (m: unknown) => this.onSettled(m as SettleMessage);

  constructor(private readonly clientId: string | undefined) {
    tracingChannel(CHANNELS.send).subscribe(this.sendHandlers);
    tracingChannel(CHANNELS.process).subscribe(this.processHandlers);
    channel(CHANNELS.settle).subscribe(this.onSettle);
  }

  waitFor(query: SpyQuery, options: WaitOptions = {}): Promise<SpyResult> {
    const found = this.records.find((r) => matches(query, r));
    if (found !== undefined) return Promise.resolve(this.result(found));
    if (this.stopped) return Promise.reject(new SpyTimeoutError(`${describe(query)}: the spy is stopped`));
    const timeoutMs = options.timeoutMs ?? 5000;
    return new Promise<SpyResult>((resolve, reject) => {
      const timer = real.setTimeout(() => {
        this.waiters.delete(waiter);
        reject(new SpyTimeoutError(this.timeoutText(query, timeoutMs)));
      }, timeoutMs);
      const waiter: Waiter = {
        query,
        resolve: (result) => {
          real.clearTimeout(timer);
          resolve(result);
        },
        reject: (error) => {
          real.clearTimeout(timer);
          reject(error);
        },
      };
      this.waiters.add(waiter);
    });
  }

  clear(): void {
    this.sent.length = 0;
    this.handled.length = 0;
    this.records.length = 0;
  }

  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    tracingChannel(CHANNELS.send).unsubscribe(this.sendHandlers);
    tracingChannel(CHANNELS.process).unsubscribe(this.processHandlers);
    channel(CHANNELS.settle).unsubscribe(this.onSettle);
    for (const waiter of this.waiters)
      waiter.reject(new SpyTimeoutError(`${describe(waiter.query)}: the spy was stopped`));
    this.waiters.clear();
  }

  [Symbol.dispose](): void {
    this.stop();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    this.stop();
  }

  private mine(clientId: string): boolean {
    return this.clientId === undefined || this.clientId === clientId;
  }

  private onSent(c: SendContext): void {
    if (c.error !== undefined || !this.mine(c.clientId)) return;
    const record: SentRecord = {
      outcome: 'sent',
      kind: c.kind,
      destination: c.destination,
      id: c.id,
      key: c.key,
      subject: c.subject,
      priority: c.priority,
      headers: { ...c.headers },
      position: c.position,
      clientId: c.clientId,
    };
    this.sent.push(record);
    this.add(record);
  }

  private onProcess(c: ProcessContext): void {
    if (this.mine(c.clientId)) this.running.set(runKey(c), c);
  }

  private onSettled(m: SettleMessage): void {
    if (!this.mine(m.clientId)) return;
    const key = runKey(m);
    const run = this.running.get(key);
    this.running.delete(key);
    const record: HandledRecord = {
      outcome: OUTCOMES[m.outcome],
      kind: m.kind,
      destination: m.destination,
      consumer: m.consumer,
      id: m.id,
      attempt: m.attempt,
      redelivered: run?.redelivered ?? false,
      key: run?.key,
      subject: run?.subject,
      headers: run?.headers ?? {},
      position: run?.position,
      reason: m.reason,
      delayMs: m.delayMs,
      deadLetter: m.deadLetter,
      clientId: m.clientId,
    };
    this.handled.push(record);
    this.add(record);
  }

  private add(record: SpyRecord): void {
    this.records.push(record);
    for (const waiter of this.waiters) {
      if (!matches(waiter.query, record)) continue;
      this.waiters.delete(waiter);
      waiter.resolve(this.result(record));
    }
  }

  private result(record: SpyRecord): SpyResult {
    const history = this.handled.filter((h) => h.id === record.id && h.destination === record.destination);
    return {
      outcome: record.outcome,
      id: record.id,
      destination: record.destination,
      kind: record.kind,
      record,
      attempts: history.length,
      history,
    };
  }

  private timeoutText(query: SpyQuery, timeoutMs: number): string {
    const seen = this.records
      .slice(-12)
      .map(
        (r) =>
          `${r.outcome} ${r.kind} "${r.destination}" ${r.id}` +
          (r.outcome === 'sent'
            ? ''
            : ` (attempt ${r.attempt}${r.reason === undefined ? '' : `: ${r.reason}`})`),
      );
    const more = this.records.length > seen.length ? ` (last ${seen.length} of ${this.records.length})` : '';
    const saw = seen.length === 0 ? 'it saw nothing' : `it saw${more}:\n  - ${seen.join('\n  - ')}`;
    const hint = fakeTimersOn()
      ? '\n(fake timers are on: retry delays and delayed deliveries wait until the test advances them)'
      : '';
    return `[omnibus] [testing] timed out after ${timeoutMs} ms ${describe(query)}; ${saw}${hint}`;
  }
}

type Handler = (context: object) => void;
type TracingHandlers = Record<'start' | 'end' | 'asyncStart' | 'asyncEnd' | 'error', Handler>;

/** Tracing-channel subscribers: the events given, no-ops for the others (node's types want all five). */
function handlers(some: Partial<TracingHandlers>): TracingHandlers {
  const none: Handler = () => undefined;
  return { start: none, end: none, asyncStart: none, asyncEnd: none, error: none, ...some };
}

const OUTCOMES = {
  ack: 'acked',
  retry: 'retried',
  deadLetter: 'deadLettered',
  requeue: 'requeued',
} as const satisfies Record<SettleMessage['outcome'], HandledRecord['outcome']>;

function runKey(m: {
  readonly clientId: string;
  readonly kind: string;
  readonly destination: string;
  readonly consumer: string | undefined;
  readonly id: string;
  readonly attempt: number;
}): string {
  return [m.clientId, m.kind, m.destination, m.consumer ?? '', m.id, m.attempt].join('\u0000');
}

function matches(query: SpyQuery, record: SpyRecord): boolean {
  return (
    record.outcome === query.outcome &&
    (query.destination === undefined || record.destination === query.destination) &&
    (query.id === undefined || record.id === query.id) &&
    (query.where === undefined || query.where(record))
  );
}

function describe(query: SpyQuery): string {
  const parts = [`outcome: '${query.outcome}'`];
  if (query.destination !== undefined) parts.push(`destination: '${query.destination}'`);
  if (query.id !== undefined) parts.push(`id: '${query.id}'`);
  if (query.where !== undefined) parts.push('where: <predicate>');
  return `waiting for { ${parts.join(', ')} }`;
}
