/**
 * Send batching for brokers whose protocol takes many messages in one request (Kafka's Produce):
 * one request per message costs a round trip each. Items queue per destination; a batch leaves
 * when nothing is in flight for that destination (after `lingerMs`, or at the end of the current
 * tick) or when it is full, and each item's promise settles from the answer for the whole batch.
 * When a request returns, what queued meanwhile leaves at once, as the next batch (as kafkajs'
 * own pipelining does): under concurrent senders batches fill by themselves, with no linger.
 * One request per destination is in flight at a time, so a destination gets its items in the order
 * they were added. Exported for adapters.
 *
 * The per-item path allocates the item's promise and one small object, no closure: `add` is called
 * once per message.
 */

export interface BatcherOptions<T, R> {
  /**
   * Sends one batch of `destination`. Resolves with one result per item, in order: an `Error`
   * rejects that item's promise alone. A rejection rejects every item of the batch.
   */
  send(destination: string, items: readonly T[]): Promise<readonly (R | Error)[]>;
  /** Items in one batch. */
  readonly maxItems: number;
  /** Bytes in one batch; an item larger than that still goes, alone. */
  readonly maxBytes: number;
  /** Extra wait for a batch to fill when nothing is in flight; 0 gathers what is added in the same tick. @default 0 (ms) */
  readonly lingerMs?: number;
}

/** One queued item and the settlement of its promise, or of its group's (`addAll`). */
class Entry<T, R> {
  resolve!: (result: R) => void;
  reject!: (error: Error) => void;

  constructor(
    readonly item: T,
    readonly bytes: number,
    /** The group it was queued with by `addAll`, and its index there. */
    readonly group: Group<R> | undefined = undefined,
    readonly index = 0,
  ) {}

  settle(result: R | Error): void {
    if (this.group !== undefined) this.group.answer(this.index, result);
    else if (result instanceof Error) this.reject(result);
    else this.resolve(result);
  }
}

/**
 * The items `addAll` queued together: one promise for all of them, settled once the last one is
 * answered, whichever batches they went in.
 */
class Group<R> {
  readonly results: (R | Error)[];
  private left: number;
  resolve!: (results: (R | Error)[]) => void;

  constructor(count: number) {
    this.results = new Array(count);
    this.left = count;
  }

  answer(index: number, result: R | Error): void {
    this.results[index] = result;
    if (--this.left === 0) this.resolve(this.results);
  }
}

/** The entry whose promise is being made: lets one shared executor fill it in, instead of a closure per item. */
let making: Entry<unknown, unknown> | undefined;
function capture(resolve: (result: unknown) => void, reject: (error: Error) => void): void {
  making!.resolve = resolve;
  making!.reject = reject;
}

class Destination<T, R> {
  readonly pending: Entry<T, R>[] = [];
  bytes = 0;
  inFlight = false;
  scheduled = false;
  readonly idle: (() => void)[] = [];
  /** Fires the scheduled batch (made once per destination, not per item). */
  readonly fire: () => void;

  constructor(
    readonly name: string,
    run: (d: Destination<T, R>) => void,
  ) {
    this.fire = () => {
      this.scheduled = false;
      run(this);
    };
  }
}

export class Batcher<T, R> {
  private readonly destinations = new Map<string, Destination<T, R>>();
  /** Batches sent so far, for tests and benchmarks. */
  requests = 0;
  /** Items sent so far (with `requests`: the mean batch size), for tests and benchmarks. */
  items = 0;

  constructor(private readonly o: BatcherOptions<T, R>) {}

  /** Queues `item` (about `bytes` long) for `destination`; resolves with its result. */
  add(destination: string, item: T, bytes: number): Promise<R> {
    const d = this.destination(destination);
    const entry = new Entry<T, R>(item, bytes);
    making = entry as Entry<unknown, unknown>;
    const promise = new Promise<R>(capture as (resolve: (r: R) => void, reject: (e: Error) => void) => void);
    making = undefined;
    d.pending.push(entry);
    d.bytes += bytes;
    this.queued(d);
    return promise;
  }

  /**
   * Queues `items` (`bytes[i]` long each) for `destination`, in order, as `add` does each; resolves
   * once every one is answered, with one result per item: its value, or the `Error` it failed
   * with. One promise for them all, whichever batches they go in.
   */
  addAll(destination: string, items: readonly T[], bytes: readonly number[]): Promise<(R | Error)[]> {
    const count = items.length;
    if (count === 0) return Promise.resolve([]);
    const d = this.destination(destination);
    const group = new Group<R>(count);
    const promise = new Promise<(R | Error)[]>((resolve) => {
      group.resolve = resolve;
    });
    for (let i = 0; i < count; i++) {
      const size = bytes[i]!;
      d.pending.push(new Entry<T, R>(items[i]!, size, group, i));
      d.bytes += size;
      // A full batch leaves now, as with `add`; the rest waits for the request in flight or the tick.
      if (!d.inFlight && (d.pending.length >= this.o.maxItems || d.bytes >= this.o.maxBytes))
        void this.run(d);
    }
    this.queued(d);
    return promise;
  }

  private destination(name: string): Destination<T, R> {
    let d = this.destinations.get(name);
    if (d === undefined) {
      d = new Destination<T, R>(name, (queue) => void this.run(queue));
      this.destinations.set(name, d);
    }
    return d;
  }

  /** After items were queued: a full batch leaves now, else one is scheduled (unless a request is in flight). */
  private queued(d: Destination<T, R>): void {
    if (d.inFlight || d.pending.length === 0) return;
    if (d.pending.length >= this.o.maxItems || d.bytes >= this.o.maxBytes) {
      void this.run(d);
    } else if (!d.scheduled) {
      d.scheduled = true;
      // setImmediate gathers everything added in this tick (e.g. Promise.all over many sends).
      if ((this.o.lingerMs ?? 0) > 0) setTimeout(d.fire, this.o.lingerMs);
      else setImmediate(d.fire);
    }
  }

  /** Resolves when every queued item has been answered. */
  async flush(): Promise<void> {
    await Promise.all(
      [...this.destinations.values()].map((d) =>
        d.inFlight || d.pending.length > 0 ? new Promise<void>((resolve) => d.idle.push(resolve)) : undefined,
      ),
    );
  }

  private async run(d: Destination<T, R>): Promise<void> {
    if (d.inFlight || d.pending.length === 0) return;
    let count = 0;
    let bytes = 0;
    while (count < d.pending.length && count < this.o.maxItems) {
      const size = d.pending[count]!.bytes;
      if (count > 0 && bytes + size > this.o.maxBytes) break;
      bytes += size;
      count++;
    }
    const batch = d.pending.splice(0, count);
    const items: T[] = new Array(count);
    for (let i = 0; i < count; i++) items[i] = batch[i]!.item;
    d.bytes -= bytes;
    d.inFlight = true;
    this.requests++;
    this.items += count;
    try {
      const results = await this.o.send(d.name, items);
      for (let i = 0; i < count; i++) {
        const entry = batch[i]!;
        if (i >= results.length) entry.settle(new Error(`no result for item ${i} of the batch`));
        else entry.settle(results[i] as R | Error);
      }
    } catch (error) {
      const failure = error instanceof Error ? error : new Error(String(error));
      for (const entry of batch) entry.settle(failure);
    } finally {
      d.inFlight = false;
      // What waited while the request was in flight goes now, together.
      if (d.pending.length > 0) void this.run(d);
      else for (const wake of d.idle.splice(0)) wake();
    }
  }
}
