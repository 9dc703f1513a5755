/**
 * Many deadlines, one timer: handler timeouts and send timeouts are checked by a shared sweep
 * instead of a `setTimeout` per message, which costs more than the in-memory broker's whole
 * delivery path. A deadline fires within `resolutionMs` after it is due.
 */
export interface Deadline {
  readonly dueAt: number;
  readonly fire: () => void;
}

export class Deadlines {
  private readonly entries = new Set<Deadline>();
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly resolutionMs: number) {}

  add(timeoutMs: number, fire: () => void): Deadline {
    const deadline = { dueAt: Date.now() + timeoutMs, fire };
    this.entries.add(deadline);
    if (this.timer === undefined) {
      this.timer = setInterval(() => this.sweep(), Math.max(1, Math.min(this.resolutionMs, timeoutMs)));
      this.timer.unref();
    }
    return deadline;
  }

  remove(deadline: Deadline | undefined): void {
    // The timer stops at the next sweep that finds nothing: starting and stopping it per message
    // would cost more than the messages.
    if (deadline !== undefined) this.entries.delete(deadline);
  }

  stop(): void {
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
  }

  private sweep(): void {
    const now = Date.now();
    for (const deadline of this.entries) {
      if (deadline.dueAt <= now) {
        this.entries.delete(deadline);
        deadline.fire();
      }
    }
    if (this.entries.size === 0) this.stop();
  }
}

/** Resolves after `ms`, or at once when `signal` aborts (resolving `false`). */
export function delay(ms: number, signal?: AbortSignal): Promise<boolean> {
  if (ms <= 0) return Promise.resolve(!(signal?.aborted ?? false));
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve(false);
    const onAbort = () => {
      clearTimeout(timer);
      resolve(false);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve(true);
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
