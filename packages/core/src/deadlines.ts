/**
 * Many deadlines, one timer: handler timeouts and send timeouts are checked by a shared sweep
 * instead of a `setTimeout` per message, which costs more than the in-memory broker's whole
 * delivery path. Deadlines of one duration are kept in a list in the order they were added,
 * which is also the order they fall due, so adding, removing and sweeping are O(1) per deadline.
 * A deadline fires within `resolutionMs` after it is due.
 */
export interface Deadline {
  fire(): void;
}

/**
 * A deadline in its list. An owner that is made per message anyway (a send waiting for its
 * confirm) extends this and `insert`s itself, so the deadline costs no node and no closure of its own.
 */
export abstract class DeadlineNode implements Deadline {
  /** When it fires (ms since the epoch). */
  firesAt = 0;
  list: List | undefined = undefined;
  prev: DeadlineNode | undefined = undefined;
  next: DeadlineNode | undefined = undefined;
  abstract fire(): void;
}

/** The node `add` makes: it calls the function it was given. */
class CallbackNode extends DeadlineNode {
  constructor(private readonly callback: () => void) {
    super();
  }

  fire(): void {
    this.callback();
  }
}

interface List {
  head: DeadlineNode | undefined;
  tail: DeadlineNode | undefined;
}

export class Deadlines {
  private readonly lists = new Map<number, List>();
  private timer: NodeJS.Timeout | undefined;
  private size = 0;

  constructor(private readonly resolutionMs: number) {}

  add(timeoutMs: number, fire: () => void): Deadline {
    const node = new CallbackNode(fire);
    this.insert(timeoutMs, node);
    return node;
  }

  /** Puts `node` (not in a list) in, due `timeoutMs` from now; it is its own handle for `remove`. */
  insert(timeoutMs: number, node: DeadlineNode): void {
    let list = this.lists.get(timeoutMs);
    if (list === undefined) {
      list = { head: undefined, tail: undefined };
      this.lists.set(timeoutMs, list);
    }
    node.firesAt = Date.now() + timeoutMs;
    node.list = list;
    node.prev = list.tail;
    node.next = undefined;
    if (list.tail === undefined) list.head = node;
    else list.tail.next = node;
    list.tail = node;
    this.size++;
    if (this.timer === undefined) {
      this.timer = setInterval(() => this.sweep(), Math.max(1, Math.min(this.resolutionMs, timeoutMs)));
      this.timer.unref();
    }
  }

  remove(deadline: Deadline | undefined): void {
    // The timer stops at the next sweep that finds nothing: starting and stopping it per message
    // would cost more than the messages.
    if (deadline !== undefined) this.unlink(deadline as DeadlineNode);
  }

  stop(): void {
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
  }

  private unlink(node: DeadlineNode): void {
    const list = node.list;
    if (list === undefined) return;
    if (node.prev === undefined) list.head = node.next;
    else node.prev.next = node.next;
    if (node.next === undefined) list.tail = node.prev;
    else node.next.prev = node.prev;
    node.list = undefined;
    node.prev = undefined;
    node.next = undefined;
    this.size--;
  }

  private sweep(): void {
    const now = Date.now();
    for (const [timeoutMs, list] of this.lists) {
      while (list.head !== undefined && list.head.firesAt <= now) {
        const due = list.head;
        this.unlink(due);
        due.fire();
      }
      if (list.head === undefined) this.lists.delete(timeoutMs);
    }
    if (this.size === 0) this.stop();
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
