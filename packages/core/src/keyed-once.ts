/**
 * Async work done once per key — declaring a queue, creating a topic, probing a server — which
 * every adapter needs and each wrote by hand: callers of one key share one promise; a failure is
 * forgotten, so the next call tries again; `clear()` forgets everything (a new connection, where
 * what the old one declared must be declared again).
 */
export class KeyedOnce<V = void> {
  private readonly started = new Map<string, Promise<V>>();
  private readonly succeeded = new Set<string>();

  /** `work()` for `key`, started on the first call and shared until it fails or is forgotten. */
  run(key: string, work: () => Promise<V>): Promise<V> {
    let promise = this.started.get(key);
    if (promise === undefined) {
      const running = work();
      promise = running;
      this.started.set(key, running);
      running.then(
        () => {
          if (this.started.get(key) === running) this.succeeded.add(key);
        },
        () => {
          if (this.started.get(key) === running) this.started.delete(key);
        },
      );
    }
    return promise;
  }

  /** True once the work for `key` succeeded (and was not forgotten since): a hot path can skip the await. */
  done(key: string): boolean {
    return this.succeeded.has(key);
  }

  /** Forgets `key`: the next `run` does the work again. */
  forget(key: string): void {
    this.started.delete(key);
    this.succeeded.delete(key);
  }

  /** Forgets every key. */
  clear(): void {
    this.started.clear();
    this.succeeded.clear();
  }
}
