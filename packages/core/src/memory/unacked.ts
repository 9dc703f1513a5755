/**
 * A queue's unacked deliveries by tag. Tags are handed out in increasing order and mostly settled
 * in about that order, so the deliveries sit in a ring indexed by the tag (two arrays, item and
 * consumer, so a delivery costs no object of its own, and the ring is reused: nothing is allocated
 * per delivery once it is large enough). Set, get and delete are an index each, about a quarter of
 * what a `Map` with a delete per message costs. A delivery left unsettled while many later ones are
 * settled (a stuck handler) would keep the window growing; once it is mostly holes, the few
 * deliveries still in its older half move to a `Map` of their own and the window starts after them.
 */
export class Unacked<V, C> {
  private items: (V | undefined)[] = new Array<V | undefined>(64).fill(undefined);
  private consumers: (C | undefined)[] = new Array<C | undefined>(64).fill(undefined);
  /** Ring size minus one (the size is a power of two): a tag's slot is `tag & mask`. */
  private mask = 63;
  /** The window: tags from `first` (unacked, or the window is empty) up to `next` (the next to add). */
  private first = 1;
  private next = 1;
  /** Deliveries moved out of the window (much older than the rest). */
  private readonly old = new Map<number, { readonly item: V; readonly consumer: C }>();
  private live = 0;
  /** Who had the delivery `take` last removed. */
  takenBy: C | undefined = undefined;

  get size(): number {
    return this.live;
  }

  /** Adds a delivery; returns its tag (one more than the last one's; the first is `1`). */
  add(item: V, consumer: C): number {
    if (this.next - this.first > this.mask) this.grow();
    const tag = this.next;
    const slot = tag & this.mask;
    this.items[slot] = item;
    this.consumers[slot] = consumer;
    this.next++;
    this.live++;
    const span = this.next - this.first;
    if (span > 4096 && (this.live - this.old.size) * 8 < span) this.evict();
    return tag;
  }

  /**
   * The item of `tag`, removed (`takenBy` is then who had it); undefined when it is not unacked
   * (settled already, or unknown).
   */
  take(tag: number): V | undefined {
    if (tag < this.first || tag >= this.next) {
      const entry = this.old.get(tag);
      if (entry === undefined) return undefined;
      this.old.delete(tag);
      this.live--;
      this.takenBy = entry.consumer;
      return entry.item;
    }
    const slot = tag & this.mask;
    const item = this.items[slot];
    if (item === undefined) return undefined;
    this.takenBy = this.consumers[slot];
    this.items[slot] = undefined;
    this.consumers[slot] = undefined;
    this.live--;
    if (tag === this.first) this.advance();
    return item;
  }

  /** Every unacked delivery, oldest tag first. */
  entries(): [number, { readonly item: V; readonly consumer: C }][] {
    const out: [number, { readonly item: V; readonly consumer: C }][] = [...this.old].sort(
      ([a], [b]) => a - b,
    );
    for (let tag = this.first; tag < this.next; tag++) {
      const slot = tag & this.mask;
      const item = this.items[slot];
      if (item !== undefined) out.push([tag, { item, consumer: this.consumers[slot]! }]);
    }
    return out;
  }

  clear(): void {
    this.items.fill(undefined);
    this.consumers.fill(undefined);
    this.first = this.next;
    this.old.clear();
    this.live = 0;
  }

  /** Moves `first` past the settled front of the window. */
  private advance(): void {
    while (this.first < this.next && this.items[this.first & this.mask] === undefined) this.first++;
  }

  /** A ring twice the size, the window's deliveries in their new slots. */
  private grow(): void {
    const size = (this.mask + 1) * 2;
    const items = new Array<V | undefined>(size).fill(undefined);
    const consumers = new Array<C | undefined>(size).fill(undefined);
    const mask = size - 1;
    for (let tag = this.first; tag < this.next; tag++) {
      items[tag & mask] = this.items[tag & this.mask];
      consumers[tag & mask] = this.consumers[tag & this.mask];
    }
    this.items = items;
    this.consumers = consumers;
    this.mask = mask;
  }

  /** The window is mostly holes behind old deliveries: the live ones of its older half move to `old`. */
  private evict(): void {
    const until = this.first + ((this.next - this.first) >> 1);
    for (let tag = this.first; tag < until; tag++) {
      const slot = tag & this.mask;
      const item = this.items[slot];
      if (item === undefined) continue;
      this.old.set(tag, { item, consumer: this.consumers[slot]! });
      this.items[slot] = undefined;
      this.consumers[slot] = undefined;
    }
    this.first = until;
    this.advance();
  }
}
