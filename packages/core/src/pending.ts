/**
 * Bookkeeping of unfinished work that every consumer and connection keeps: how many deliveries are
 * outstanding (to wait for room under a prefetch, or for none before closing), and which writes or
 * copies are still running (to wait for them before letting go of a session). Exported for adapters.
 */

/**
 * A count of outstanding work (deliveries handed to core and not settled yet) with waits on it.
 * No closure per item: `add` and `done` only move a number, and wake waiters only when there are.
 */
export class Outstanding {
  private count = 0;
  private waiters: (() => void)[] = [];

  get size(): number {
    return this.count;
  }

  add(): void {
    this.count++;
  }

  done(): void {
    if (this.count > 0) this.count--;
    if (this.waiters.length > 0) this.wake();
  }

  /** Forgets every outstanding item (their connection is gone: they will never be settled here). */
  reset(): void {
    this.count = 0;
    this.wake();
  }

  /** Wakes every wait now, whatever the count (a consumer stopping re-checks why it waited). */
  wake(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const wake of waiters) wake();
  }

  /** Resolves at the next `done`, `reset` or `wake`, or after `timeoutMs`, whichever comes first. */
  changed(timeoutMs: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, timeoutMs);
      this.waiters.push(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  /** Resolves once nothing is outstanding. */
  async idle(): Promise<void> {
    while (this.count > 0) await new Promise<void>((resolve) => this.waiters.push(resolve));
  }
}

/**
 * Promises a close must wait for (acknowledgements being written, copies being sent), tracked until
 * they settle. What fails is the tracker's caller's to handle: `settled` only waits.
 */
export class Pending {
  private readonly running = new Set<Promise<unknown>>();

  get size(): number {
    return this.running.size;
  }

  /** Tracks `promise` until it settles; returns it. */
  track<T>(promise: Promise<T>): Promise<T> {
    this.running.add(promise);
    const forget = () => this.running.delete(promise);
    promise.then(forget, forget);
    return promise;
  }

  /** Resolves once every tracked promise has settled, those tracked while waiting included. */
  async settled(): Promise<void> {
    while (this.running.size > 0) await Promise.allSettled([...this.running]);
  }
}
