import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Unacked } from '../src/memory/unacked.js';

type Op =
  | { readonly type: 'add'; readonly count: number }
  | { readonly type: 'take'; readonly pick: number }
  /** Takes every live tag but each `keep`-th (from the oldest): leaves holes behind old deliveries. */
  | { readonly type: 'thin'; readonly keep: number };

/** Runs `ops` on an `Unacked` and on a `Map` and checks they agree after every step. */
function agree(ops: readonly Op[]): void {
  const unacked = new Unacked<string, number>();
  const model = new Map<number, { item: string; consumer: number }>();
  let next = 1;
  for (const op of ops) {
    if (op.type === 'add') {
      for (let i = 0; i < op.count; i++) {
        const tag = next++;
        if (unacked.add(`m${tag}`, tag % 3) !== tag) throw new Error(`add did not return tag ${tag}`);
        model.set(tag, { item: `m${tag}`, consumer: tag % 3 });
      }
    } else if (op.type === 'thin') {
      let i = 0;
      for (const [tag, { item }] of [...model]) {
        if (i++ % op.keep === 0) continue;
        model.delete(tag);
        if (unacked.take(tag) !== item) throw new Error(`take(${tag}) did not return ${item}`);
      }
    } else {
      // A tag that is unacked, or (pick beyond the live ones) one that is not.
      const live = [...model.keys()];
      const tag = op.pick < live.length ? live[op.pick]! : next + op.pick;
      const expected = model.get(tag);
      model.delete(tag);
      expect(unacked.take(tag)).toBe(expected?.item);
      if (expected !== undefined) expect(unacked.takenBy).toBe(expected.consumer);
      // Taking it again finds nothing.
      expect(unacked.take(tag)).toBeUndefined();
    }
    expect(unacked.size).toBe(model.size);
  }
  expect(unacked.entries()).toEqual([...model].sort(([a], [b]) => a - b));
}

describe('unacked deliveries by tag (in-memory queue)', () => {
  it('agree with a Map under any order of adds and takes', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.oneof(
            fc.record({ type: fc.constant('add' as const), count: fc.integer({ min: 1, max: 3000 }) }),
            fc.record({ type: fc.constant('take' as const), pick: fc.integer({ min: 0, max: 5000 }) }),
            fc.record({ type: fc.constant('thin' as const), keep: fc.integer({ min: 2, max: 40 }) }),
          ),
          { maxLength: 60 },
        ),
        (ops) => agree(ops),
      ),
      { numRuns: 200 },
    );
  });

  it('settling in order keeps the window small', () => {
    const unacked = new Unacked<number, number>();
    let wrong = 0;
    for (let tag = 1; tag <= 100_000; tag++) {
      unacked.add(tag, 0);
      if (tag > 100 && unacked.take(tag - 100) !== tag - 100) wrong++;
    }
    expect(wrong).toBe(0);
    expect(unacked.size).toBe(100);
    // The ring grew to hold the 100 in flight and no further.
    expect((unacked as unknown as { items: unknown[] }).items.length).toBe(128);
  });

  it('a delivery never settled does not keep the window growing behind it', () => {
    const unacked = new Unacked<number, number>();
    unacked.add(1, 0);
    let wrong = 0;
    for (let tag = 2; tag <= 200_000; tag++) {
      unacked.add(tag, 0);
      if (unacked.take(tag) !== tag) wrong++;
    }
    expect(wrong).toBe(0);
    // Bounded: the ring stops growing once the window is evicted at 4,096 tags.
    expect((unacked as unknown as { items: unknown[] }).items.length).toBeLessThanOrEqual(8192);
    expect(unacked.entries()).toEqual([[1, { item: 1, consumer: 0 }]]);
    expect(unacked.take(1)).toBe(1);
    expect(unacked.size).toBe(0);
  });
});
