/**
 * Where a reader of a one-partition log starts, for brokers that start a reader at a coarser place
 * than asked (a RabbitMQ stream starts at the chunk holding an offset, and at a whole second for a
 * time): what to ask the broker for, and which entries before the start to skip. After a
 * reconnection a reader goes on from the offset it names; a read from 'latest' that reconnects
 * before anything named an offset goes on from when it first started, so what was appended
 * meanwhile is still read. Exported for adapters.
 */
import type { Delivery, ResolvedReadFrom } from './adapter.js';
import { HEADER } from './envelope.js';
import { ValidationError } from './errors.js';

/** What to ask the broker for: its first or next entry, an offset, or a time in whole seconds. */
export type StartAt = 'first' | 'next' | { readonly offset: number } | { readonly seconds: number };

export class LogStart {
  /** When a read from 'latest' first attached. */
  private startedAt: number | undefined;
  /** Entries before this offset, or sent before this time (ms), are skipped until one is not. */
  private from: number | undefined;
  private since: number | undefined;
  private open = false;

  /** Rejects positions that name a partition other than 0 (`what`: the log, for the error). */
  constructor(
    private readonly spec: ResolvedReadFrom,
    what: string,
    adapter: string,
  ) {
    const others = spec.kind === 'positions' ? spec.positions.filter((p) => p.partition !== 0) : [];
    if (others.length > 0) {
      const named = others.map((p) => p.partition).join(', ');
      throw new ValidationError(`${what} is a single partition (0); positions name partitions ${named}`, [], {
        adapter,
      });
    }
  }

  /** Where to attach now. `resume`: the offset to go on from, once reading named one. */
  next(resume?: number): StartAt {
    this.open = false;
    this.from = undefined;
    this.since = undefined;
    if (resume !== undefined) return this.at(resume);
    const spec = this.spec;
    switch (spec.kind) {
      case 'earliest':
        return 'first';
      case 'latest':
        if (this.startedAt === undefined) {
          this.startedAt = Date.now();
          return 'next';
        }
        return this.after(this.startedAt);
      case 'positions': {
        const offset = spec.positions.find((p) => p.partition === 0)?.offset;
        return offset === undefined ? 'first' : this.at(offset);
      }
      case 'timestamp':
        return this.after(spec.timestamp);
    }
  }

  /** False for an entry before the start; once one is not, no later one is. */
  accepts(offset: number, entry: Pick<Delivery, 'headers' | 'timestamp'>): boolean {
    if (!this.open) {
      const sentAt = Number(entry.headers[HEADER.timestamp] ?? entry.timestamp);
      this.open = !(offset < (this.from ?? offset) || sentAt < (this.since ?? sentAt));
    }
    return this.open;
  }

  private at(offset: number): StartAt {
    this.from = offset;
    return { offset };
  }

  /** Whole seconds: start a second early (clock skew) and skip what was sent before `ms`. */
  private after(ms: number): StartAt {
    this.since = ms;
    return { seconds: Math.floor(ms / 1000) - 1 };
  }
}
