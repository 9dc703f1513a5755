/**
 * Positions for appends to a log whose broker confirms a write without saying where it landed
 * (RabbitMQ streams, over AMQP 0-9-1 and over STOMP): the adapter reads its own entries back. One
 * reader per log from 'latest' (the adapter's own `read`), attached before the first append; each
 * append carries a reference header (`HEADER.appendRef`), and resolves with the position of the
 * entry that carries it once the write is confirmed too. The cost: every entry appended to that log
 * while its reader is up (by anyone) crosses the network once more. A reader stops after an idle
 * spell with nothing waiting and starts again on the next append. Exported for adapters.
 */
import { randomBytes } from 'node:crypto';
import type { Deliver, Delivery, Subscription } from './adapter.js';
import { HEADER } from './envelope.js';
import { ClosedError, TimeoutError } from './errors.js';
import { withTimeout } from './timing.js';
import type { Headers, LogPosition } from './types.js';

export interface ReadBackOptions {
  /**
   * Starts reading `log` from 'latest', handing each entry to `deliver` (the adapter's own `read`).
   * After a reconnection the reader must go on where it was, so an entry confirmed just before an
   * outage still comes by. `ended`: the reader stopped by itself; the next append starts another.
   */
  read(log: string, deliver: Deliver, ended: () => void): Promise<Subscription>;
  readonly adapter: string;
  /** How long an append waits for its entry once the write is confirmed. @default no limit (core's send timeout bounds it) */
  readonly timeoutMs?: number;
  /** A log's reader stops after this long with no append. @default 5000 (ms) */
  readonly idleMs?: number;
}

interface Waiter {
  resolve(position: LogPosition): void;
  reject(error: Error): void;
}

export class ReadBack {
  private readonly logs = new Map<string, LogReadBack>();
  private readonly prefix = `${randomBytes(6).toString('hex')}.`;
  private sequence = 0;

  constructor(private readonly o: ReadBackOptions) {}

  /**
   * Appends to `log` with `write`, which must send the entry with the envelope headers `extra` and
   * resolve once the broker confirmed it; resolves with the entry's position.
   */
  async append(log: string, write: (extra: Headers) => Promise<void>): Promise<LogPosition> {
    let reader = this.logs.get(log);
    if (reader === undefined) {
      reader = new LogReadBack(log, this.o, () => this.logs.delete(log));
      this.logs.set(log, reader);
    }
    await reader.ready();
    const ref = `${this.prefix}${++this.sequence}`;
    const position = reader.expect(ref);
    // Rejected by a close while the write is under way: awaited below, not unhandled meanwhile.
    position.catch(() => undefined);
    try {
      await write({ [HEADER.appendRef]: ref });
      return await position;
    } finally {
      reader.forget(ref);
    }
  }

  /** Stops every reader; appends still waiting reject. */
  close(): void {
    for (const reader of this.logs.values()) reader.close();
    this.logs.clear();
  }
}

/** The read-back of one log. */
class LogReadBack {
  private readonly waiting = new Map<string, Waiter>();
  private reader: Promise<Subscription> | undefined;
  private idle: NodeJS.Timeout | undefined;
  /** When the last append came: an append only writes this, the idle timer reads it. */
  private usedAt = 0;

  constructor(
    private readonly log: string,
    private readonly o: ReadBackOptions,
    private readonly onClose: () => void,
  ) {}

  /** Resolves once the reader is attached, so every later append is read back. */
  async ready(): Promise<void> {
    this.touch();
    if (this.reader === undefined) {
      const forget = () => {
        if (this.reader === reader) this.reader = undefined;
      };
      const reader = this.o
        .read(this.log, (entry) => this.onEntry(entry), forget)
        .catch((error: unknown) => {
          forget();
          throw error;
        });
      this.reader = reader;
    }
    await this.reader;
  }

  expect(ref: string): Promise<LogPosition> {
    const seen = new Promise<LogPosition>((resolve, reject) => this.waiting.set(ref, { resolve, reject }));
    const timeoutMs = this.o.timeoutMs;
    if (timeoutMs === undefined) return seen;
    const why = `appended to "${this.log}" but its position was not read back within ${timeoutMs} ms`;
    return withTimeout(seen, timeoutMs, () => new TimeoutError(why, timeoutMs, { adapter: this.o.adapter }));
  }

  forget(ref: string): void {
    this.waiting.delete(ref);
  }

  close(): void {
    const closing = new ClosedError(`appending to "${this.log}": the connection is closing`, {
      adapter: this.o.adapter,
    });
    for (const waiter of this.waiting.values()) waiter.reject(closing);
    this.waiting.clear();
    if (this.idle !== undefined) clearTimeout(this.idle);
    this.idle = undefined;
    void this.reader?.then((reader) => reader.close()).catch(() => undefined);
    this.reader = undefined;
    this.onClose();
  }

  private async onEntry(entry: Delivery): Promise<void> {
    await entry.ack();
    const ref = entry.headers[HEADER.appendRef];
    const waiter = ref === undefined ? undefined : this.waiting.get(ref);
    if (waiter === undefined || entry.position === undefined) return;
    this.waiting.delete(ref!);
    waiter.resolve(entry.position);
  }

  /**
   * Stops reading back after a quiet spell with nothing waiting. One timer per spell, not per append
   * (a clearTimeout and a setTimeout per append showed in the append profile): an append records
   * its time, and the timer, when it fires early, waits out the rest.
   */
  private touch(): void {
    this.usedAt = Date.now();
    if (this.idle === undefined) this.arm(this.o.idleMs ?? 5_000);
  }

  private arm(ms: number): void {
    this.idle = setTimeout(() => {
      this.idle = undefined;
      const idleMs = this.o.idleMs ?? 5_000;
      const left = this.usedAt + idleMs - Date.now();
      if (left > 0) this.arm(left);
      else if (this.waiting.size === 0) this.close();
      else this.arm(idleMs);
    }, ms);
    this.idle.unref();
  }
}
