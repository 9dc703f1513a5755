/**
 * A queue's unacked deliveries by tag. Tags are handed out in increasing order and mostly settled
 * in about that order, so the deliveries sit in an array indexed by `tag - base` (two arrays, item
 * and consumer, so a delivery costs no object of its own): set, get and delete are an index each,
 * about a quarter of what a `Map` with a delete per message costs. The settled front is dropped as
 * it forms. A delivery left unsettled while many later ones are settled (a stuck handler) would keep
 * the array growing; once the window is mostly holes, the few deliveries still in its older half
 * move to a `Map` of their own and the window starts after them.
 */
export class Unacked<V, C> {
  private items: (V | undefined)[] = [];
  private consumers: (C | undefined)[] = [];
  /** The tag of `items[0]`. */
  private base = 1;
  /** Leading holes of the arrays (settled at the front). */
  private head = 0;
  /** Deliveries moved out of the window (much older than the rest). */
  private readonly old = new Map<number, { readonly item: V; readonly consumer: C }>();
  private live = 0;

  get size(): number {
    return this.live;
  }

  /** Who had the delivery `take` last removed. */
  takenBy: C | undefined = undefined;

  /** Adds the delivery with the next tag (one more than the last added; the first is `1`). */
  add(tag: number, item: V, consumer: C): void {
    if (tag - this.base !== this.items.length) throw new Error(`unacked tag ${tag} out of order`);
    this.items.push(item);
    this.consumers.push(consumer);
    this.live++;
    const length = this.items.length;
    if (length > 4096 && (this.live - this.old.size) * 8 < length) this.evict();
  }

  /**
   * The item of `tag`, removed (`takenBy` is then who had it); undefined when it is not unacked
   * (settled already, or unknown).
   */
  take(tag: number): V | undefined {
    const at = tag - this.base;
    if (at < 0 || at >= this.items.length) {
      const entry = this.old.get(tag);
      if (entry === undefined) return undefined;
      this.old.delete(tag);
      this.live--;
      this.takenBy = entry.consumer;
      return entry.item;
    }
    const item = this.items[at];
    if (item === undefined) return undefined;
    this.takenBy = this.consumers[at];
    this.items[at] = undefined;
    this.consumers[at] = undefined;
    this.live--;
    if (at === this.head) this.trim();
    return item;
  }

  /** Every unacked delivery, oldest tag first. */
  entries(): [number, { readonly item: V; readonly consumer: C }][] {
    const out: [number, { readonly item: V; readonly consumer: C }][] = [...this.old].sort(
      ([a], [b]) => a - b,
    );
    for (let at = this.head; at < this.items.length; at++) {
      const item = this.items[at];
      if (item !== undefined) out.push([this.base + at, { item, consumer: this.consumers[at]! }]);
    }
    return out;
  }

  clear(): void {
    this.base += this.items.length;
    this.items = [];
    this.consumers = [];
    this.head = 0;
    this.old.clear();
    this.live = 0;
  }

  /** Drops the settled front. */
  private trim(): void {
    const items = this.items;
    while (this.head < items.length && items[this.head] === undefined) this.head++;
    if (this.head === items.length) {
      this.base += items.length;
      this.items = [];
      this.consumers = [];
      this.head = 0;
    } else if (this.head > 1024 && this.head * 2 > items.length) {
      this.drop(this.head);
    }
  }

  /** The window is mostly holes behind old deliveries: the live ones of its older half move to `old`. */
  private evict(): void {
    const half = this.items.length >> 1;
    for (let at = this.head; at < half; at++) {
      const item = this.items[at];
      if (item !== undefined) this.old.set(this.base + at, { item, consumer: this.consumers[at]! });
    }
    this.drop(half);
    this.trim();
  }

  private drop(count: number): void {
    this.items.splice(0, count);
    this.consumers.splice(0, count);
    this.base += count;
    this.head = 0;
  }
}
