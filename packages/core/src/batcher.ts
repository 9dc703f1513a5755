/**
 * Send batching for brokers whose protocol takes many messages in one request (Kafka's Produce):
 * one request per message costs a round trip each. Items queue per destination; a batch leaves
 * when nothing is in flight for that destination (after `lingerMs`, or at the end of the current
 * tick) or when it is full, and each item's promise settles from the answer for the whole batch.
 * One request per destination is in flight at a time, so a destination gets its items in the order
 * they were added. Exported for adapters.
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

interface Entry<T, R> {
  readonly item: T;
  readonly bytes: number;
  readonly resolve: (result: R) => void;
  readonly reject: (error: Error) => void;
}

interface Destination<T, R> {
  readonly pending: Entry<T, R>[];
  bytes: number;
  inFlight: boolean;
  scheduled: boolean;
  readonly idle: (() => void)[];
}

export class Batcher<T, R> {
  private readonly destinations = new Map<string, Destination<T, R>>();
  /** Batches sent so far, for tests and benchmarks. */
  requests = 0;

  constructor(private readonly o: BatcherOptions<T, R>) {}

  /** Queues `item` (about `bytes` long) for `destination`; resolves with its result. */
  add(destination: string, item: T, bytes: number): Promise<R> {
    let d = this.destinations.get(destination);
    if (d === undefined) {
      d = { pending: [], bytes: 0, inFlight: false, scheduled: false, idle: [] };
      this.destinations.set(destination, d);
    }
    const queue = d;
    return new Promise<R>((resolve, reject) => {
      queue.pending.push({ item, bytes, resolve, reject });
      queue.bytes += bytes;
      if (queue.inFlight) return;
      if (queue.pending.length >= this.o.maxItems || queue.bytes >= this.o.maxBytes) {
        void this.run(destination, queue);
      } else if (!queue.scheduled) {
        queue.scheduled = true;
        const fire = () => {
          queue.scheduled = false;
          void this.run(destination, queue);
        };
        // setImmediate gathers everything added in this tick (e.g. Promise.all over many sends).
        if ((this.o.lingerMs ?? 0) > 0) setTimeout(fire, this.o.lingerMs);
        else setImmediate(fire);
      }
    });
  }

  /** Resolves when every queued item has been answered. */
  async flush(): Promise<void> {
    await Promise.all(
      [...this.destinations.values()].map((d) =>
        d.inFlight || d.pending.length > 0 ? new Promise<void>((resolve) => d.idle.push(resolve)) : undefined,
      ),
    );
  }

  private async run(destination: string, d: Destination<T, R>): Promise<void> {
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
    d.bytes -= bytes;
    d.inFlight = true;
    this.requests++;
    try {
      const results = await this.o.send(
        destination,
        batch.map((e) => e.item),
      );
      batch.forEach((entry, i) => {
        const result = results[i];
        if (result instanceof Error) entry.reject(result);
        else if (i >= results.length) entry.reject(new Error(`no result for item ${i} of the batch`));
        else entry.resolve(result as R);
      });
    } catch (error) {
      const failure = error instanceof Error ? error : new Error(String(error));
      for (const entry of batch) entry.reject(failure);
    } finally {
      d.inFlight = false;
      // What waited while the request was in flight goes now, together.
      if (d.pending.length > 0) void this.run(destination, d);
      else for (const wake of d.idle.splice(0)) wake();
    }
  }
}
