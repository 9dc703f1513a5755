/**
 * Commit tracking for logs: the committed position is the first delivered offset whose handler
 * has not finished, so a commit never passes an unfinished message even when handlers finish
 * out of order (`concurrency > 1`). Works with gaps in offsets (compacted or transactional logs).
 * Exported for adapters.
 */
export class OffsetTracker {
  private readonly order: number[] = [];
  private head = 0;
  private readonly finished = new Set<number>();
  private next: number;

  /** `start`: the offset reading begins at (what is committed when nothing is in flight). */
  constructor(start: number) {
    this.next = start;
  }

  /** Records that `offset` was handed to a handler. Offsets must be delivered in increasing order. */
  delivered(offset: number): void {
    this.order.push(offset);
  }

  /** Marks `offset` finished; returns true when the committable position moved. */
  finish(offset: number): boolean {
    // The common case, handlers finishing in order: the oldest one, with none finished out of order.
    if (this.finished.size === 0 && this.head < this.order.length && this.order[this.head] === offset) {
      this.next = offset + 1;
      this.head++;
      this.compact();
      return true;
    }
    this.finished.add(offset);
    let moved = false;
    while (this.head < this.order.length && this.finished.has(this.order[this.head]!)) {
      const done = this.order[this.head]!;
      this.finished.delete(done);
      this.next = done + 1;
      this.head++;
      moved = true;
    }
    this.compact();
    return moved;
  }

  /** Drops the finished front of `order` once it is most of it. */
  private compact(): void {
    if (this.head > 1024 && this.head * 2 > this.order.length) {
      this.order.splice(0, this.head);
      this.head = 0;
    }
  }

  /** The offset to commit: everything before it has finished. */
  get committable(): number {
    return this.next;
  }

  /** Delivered offsets whose handlers have not finished. */
  get inFlight(): number {
    return this.order.length - this.head - this.finished.size;
  }
}

/**
 * When a log reader commits: soon after progress (`soon()`, at most one commit per `intervalMs`),
 * or at once (`now()`, before a rebalance or on close); one commit at a time, in order, and a failed
 * one does not stop the later ones. What a commit writes, and whether it may, is the reader's.
 */
export class Committer {
  private timer: ReturnType<typeof setTimeout> | undefined;
  private chain: Promise<void> = Promise.resolve();

  constructor(
    /** The commit `soon()` makes. */
    private readonly commit: () => Promise<void>,
    private readonly intervalMs: number,
    /** A failure of a commit made by `soon()`, which no caller waits for. */
    private readonly onError: (error: unknown) => void = () => undefined,
  ) {}

  /** Commits within `intervalMs`, once for all the progress made until then. */
  soon(): void {
    if (this.timer !== undefined) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.now().catch(this.onError);
    }, this.intervalMs);
    this.timer.unref?.();
  }

  /** Runs `work` (the commit by default) after the commits before it; rejects with its error. */
  now(work: () => Promise<void> = this.commit): Promise<void> {
    const next = this.chain.then(work);
    this.chain = next.catch(() => undefined);
    return next;
  }

  /** Drops the commit `soon()` scheduled, if any. */
  cancel(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
  }
}
