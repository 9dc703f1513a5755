/**
 * Delayed queue retries: the copy is re-published after the delay, waited out here rather than in
 * a handler slot, so the consumer goes on meanwhile. Stopping the consumer cancels what is still
 * waiting: those originals stay uncommitted and come back to the group.
 */
import { ConnectionError } from '@omnibus/core';
import { explain } from './errors.js';

export class DelayedRetries {
  private readonly sleepers = new Set<() => void>();
  private stopped = false;

  constructor(
    private readonly topic: string,
    private readonly reportError: (error: Error) => void,
  ) {}

  /** Runs `republish` after `delayMs`, and again (backing off) until it works; false when stopped first. */
  async run(delayMs: number, republish: () => Promise<void>): Promise<boolean> {
    let wait = delayMs;
    for (let attempt = 0; ; attempt++) {
      if (!(await this.sleep(wait))) return false;
      try {
        await republish();
        return true;
      } catch (error) {
        if (attempt === 0) {
          this.reportError(
            new ConnectionError(
              `retry of a message of "${this.topic}" could not be re-published (trying again): ${explain(error)}`,
              { adapter: 'kafka', cause: error },
            ),
          );
        }
        wait = Math.min(500 * 2 ** attempt, 5000);
      }
    }
  }

  stop(): void {
    this.stopped = true;
    for (const wake of this.sleepers) wake();
  }

  /** Resolves true after `ms`, or false at once when stopped. */
  private sleep(ms: number): Promise<boolean> {
    if (this.stopped) return Promise.resolve(false);
    return new Promise((resolve) => {
      const wake = () => {
        clearTimeout(timer);
        this.sleepers.delete(wake);
        resolve(false);
      };
      const timer = setTimeout(() => {
        this.sleepers.delete(wake);
        resolve(true);
      }, ms);
      this.sleepers.add(wake);
    });
  }
}
