import { describe, expect, it } from 'vitest';
import { Batcher } from '../src/index.js';

/** A batcher whose requests are recorded and answered when the test says. */
function recorded(options: { maxItems?: number; maxBytes?: number; lingerMs?: number } = {}) {
  const requests: { destination: string; items: number[]; answer: (results: (number | Error)[]) => void }[] =
    [];
  const batcher = new Batcher<number, number>({
    maxItems: options.maxItems ?? 100,
    maxBytes: options.maxBytes ?? 1_000_000,
    ...(options.lingerMs === undefined ? {} : { lingerMs: options.lingerMs }),
    send: (destination, items) =>
      new Promise((answer) => void requests.push({ destination, items: [...items], answer })),
  });
  return { batcher, requests };
}

const tick = () => new Promise((resolve) => setImmediate(resolve));

describe('Batcher', () => {
  it('sends what is added in one tick as one batch per destination, settling each item', async () => {
    const { batcher, requests } = recorded();
    const a = [1, 2, 3].map((n) => batcher.add('a', n, 10));
    const b = batcher.add('b', 9, 10);
    await tick();
    expect(requests.map((r) => [r.destination, r.items])).toEqual([
      ['a', [1, 2, 3]],
      ['b', [9]],
    ]);
    const failure = new Error('refused');
    requests[0]!.answer([10, failure, 30]);
    requests[1]!.answer([90]);
    expect(await Promise.allSettled([...a, b])).toEqual([
      { status: 'fulfilled', value: 10 },
      { status: 'rejected', reason: failure },
      { status: 'fulfilled', value: 30 },
      { status: 'fulfilled', value: 90 },
    ]);
    expect(batcher.requests).toBe(2);
  });

  it('keeps one request in flight per destination; what waited goes together, in order', async () => {
    const { batcher, requests } = recorded();
    const first = batcher.add('a', 1, 1);
    await tick();
    const later = [2, 3, 4].map((n) => batcher.add('a', n, 1));
    await tick();
    expect(requests).toHaveLength(1);
    requests[0]!.answer([1]);
    await first;
    await tick();
    expect(requests.map((r) => r.items)).toEqual([[1], [2, 3, 4]]);
    requests[1]!.answer([2, 3, 4]);
    expect(await Promise.all(later)).toEqual([2, 3, 4]);
  });

  it('splits by count and by bytes; an item over the byte limit goes alone', async () => {
    const { batcher, requests } = recorded({ maxItems: 2, maxBytes: 100 });
    const sends = [batcher.add('a', 1, 10), batcher.add('a', 2, 10), batcher.add('a', 3, 10)];
    // Full at two items: it leaves at once, before the end of the tick.
    expect(requests.map((r) => r.items)).toEqual([[1, 2]]);
    requests[0]!.answer([1, 2]);
    await sends[1];
    await tick();
    requests[1]!.answer([3]);
    await sends[2];
    const big = [batcher.add('b', 1, 60), batcher.add('b', 2, 60), batcher.add('b', 3, 500)];
    await tick();
    for (let i = 2; i < 5; i++) {
      requests[i]!.answer(requests[i]!.items);
      await big[i - 2];
      await tick();
    }
    expect(requests.slice(2).map((r) => r.items)).toEqual([[1], [2], [3]]);
  });

  it('rejects every item of a batch whose request fails, and flush waits for the answers', async () => {
    const batcher = new Batcher<number, number>({
      maxItems: 10,
      maxBytes: 1000,
      send: () => Promise.reject(new Error('down')),
    });
    const sends = [batcher.add('a', 1, 1), batcher.add('a', 2, 1)];
    const settled = Promise.allSettled(sends);
    await batcher.flush();
    expect((await settled).map((s) => s.status)).toEqual(['rejected', 'rejected']);
    await expect(sends[0]).rejects.toThrow('down');
  });

  it('waits lingerMs for a batch to fill when asked to', async () => {
    const { batcher, requests } = recorded({ lingerMs: 30 });
    void batcher.add('a', 1, 1);
    await tick();
    void batcher.add('a', 2, 1);
    expect(requests).toHaveLength(0);
    await new Promise((resolve) => setTimeout(resolve, 60));
    expect(requests.map((r) => r.items)).toEqual([[1, 2]]);
  });

  it('addAll queues a group in order with single adds, across batches, and resolves once with each result', async () => {
    const { batcher, requests } = recorded({ maxItems: 3 });
    const single = batcher.add('a', 0, 1);
    const group = batcher.addAll('a', [1, 2, 3, 4, 5], [1, 1, 1, 1, 1]);
    const after = batcher.add('a', 6, 1);
    let answered = false;
    void group.then(() => {
      answered = true;
    });
    // Full at three: the first batch left while the group was being queued; the rest waits for it.
    expect(requests.map((r) => r.items)).toEqual([[0, 1, 2]]);
    const refused = new Error('refused');
    requests[0]!.answer([0, 10, refused]);
    await single;
    await tick();
    expect(requests.map((r) => r.items)).toEqual([
      [0, 1, 2],
      [3, 4, 5],
    ]);
    expect(answered).toBe(false);
    requests[1]!.answer([30, 40, 50]);
    await tick();
    expect(await group).toEqual([10, refused, 30, 40, 50]);
    expect(requests[2]!.items).toEqual([6]);
    requests[2]!.answer([60]);
    expect(await after).toBe(60);
  });

  it('addAll settles each of its items with its batch failure, and an empty group at once', async () => {
    const batcher = new Batcher<number, number>({
      maxItems: 2,
      maxBytes: 1000,
      send: (_, items) => (items[0] === 1 ? Promise.reject(new Error('down')) : Promise.resolve([...items])),
    });
    const results = await batcher.addAll('a', [1, 2, 3], [1, 1, 1]);
    expect(results.map((r) => (r instanceof Error ? r.message : r))).toEqual(['down', 'down', 3]);
    expect(await batcher.addAll('a', [], [])).toEqual([]);
  });
});
