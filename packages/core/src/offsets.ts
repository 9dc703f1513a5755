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
    this.finished.add(offset);
    let moved = false;
    while (this.head < this.order.length && this.finished.has(this.order[this.head]!)) {
      const done = this.order[this.head]!;
      this.finished.delete(done);
      this.next = done + 1;
      this.head++;
      moved = true;
    }
    if (this.head > 1024 && this.head * 2 > this.order.length) {
      this.order.splice(0, this.head);
      this.head = 0;
    }
    return moved;
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
 * When a log reader commits: within `intervalMs` after its position moved, and when asked (on
 * close, on a revoke), one commit at a time — a failed one (the connection dropped) does not stop
 * the later ones. `commit` decides what to write. Exported for adapters.
 */
export class CommitSchedule {
  private timer: ReturnType<typeof setTimeout> | undefined;
  private chain: Promise<void> = Promise.resolve();

  constructor(
    private readonly commit: () => Promise<void>,
    private readonly intervalMs: number,
    /** A scheduled commit failed (the next progress tries again). */
    private readonly failed: (error: unknown) => void = () => undefined,
  ) {}

  /** The position moved: commit within `intervalMs`, unless a commit is already scheduled. */
  soon(): void {
    if (this.timer !== undefined) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.now().catch(this.failed);
    }, this.intervalMs);
    this.timer.unref?.();
  }

  /** Commits after the commit under way, if any. */
  now(): Promise<void> {
    const next = this.chain.then(this.commit);
    this.chain = next.catch(() => undefined);
    return next;
  }

  /** Drops a scheduled commit. */
  cancel(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
  }
}
