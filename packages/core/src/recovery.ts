/**
 * Connection state for a client library that reconnects by itself but never says when it is back
 * (kafkajs): the first sign of loss reports `down` once, then `probe` (one cheap request, no
 * retries) is tried with backoff until it succeeds, which reports `up`. Exported for adapters.
 */

export interface RecoveryOptions {
  /** Asks the broker whether it answers: resolves on success, rejects otherwise. */
  probe(): Promise<void>;
  /** The connection was lost (once per outage). */
  onDown(error: Error): void;
  /** The probe succeeded after a loss. */
  onUp(): void;
  /** Wait before the first probe; doubled after each failed one. @default 250 (ms) */
  readonly initialDelayMs?: number;
  /** Longest wait between two probes. @default 2000 (ms) */
  readonly maxDelayMs?: number;
}

export class Recovery {
  private down = false;
  private closed = false;
  private probing = false;
  private timer: ReturnType<typeof setTimeout> | undefined;

  constructor(private readonly o: RecoveryOptions) {}

  /** Something failed in a way that says the broker is unreachable: report it, probe until it answers. */
  lost(error: Error): void {
    if (this.closed) return;
    if (!this.down) {
      this.down = true;
      this.o.onDown(error);
    }
    if (this.probing) return;
    this.probing = true;
    const maxDelayMs = this.o.maxDelayMs ?? 2000;
    const attempt = async (wait: number): Promise<void> => {
      if (this.closed) return;
      try {
        await this.o.probe();
      } catch {
        this.timer = setTimeout(() => void attempt(Math.min(wait * 2, maxDelayMs)), wait);
        return;
      }
      this.probing = false;
      if (this.down && !this.closed) {
        this.down = false;
        this.o.onUp();
      }
    };
    const first = this.o.initialDelayMs ?? 250;
    this.timer = setTimeout(() => void attempt(first), first);
  }

  /** Stops probing for good. */
  close(): void {
    this.closed = true;
    clearTimeout(this.timer);
  }
}
