import { describe, expect, it } from 'vitest';
import { KeyedOnce } from '../src/index.js';

describe('KeyedOnce', () => {
  it('runs the work once per key, shared by concurrent callers, and says when it succeeded', async () => {
    const once = new KeyedOnce<number>();
    let runs = 0;
    const work = async () => ++runs;
    const [a, b] = [once.run('q', work), once.run('q', work)];
    expect(a).toBe(b);
    expect(once.done('q')).toBe(false);
    expect(await a).toBe(1);
    expect(once.done('q')).toBe(true);
    expect(await once.run('q', work)).toBe(1);
    expect(await once.run('other', work)).toBe(2);
  });

  it('forgets a failure, so the next call tries again', async () => {
    const once = new KeyedOnce();
    await expect(once.run('q', () => Promise.reject(new Error('refused')))).rejects.toThrow('refused');
    expect(once.done('q')).toBe(false);
    let ran = false;
    await once.run('q', async () => {
      ran = true;
    });
    expect(ran).toBe(true);
    expect(once.done('q')).toBe(true);
  });

  it('forgets a key or everything; work forgotten while running does not count as done', async () => {
    const once = new KeyedOnce();
    let runs = 0;
    const work = async () => {
      runs++;
    };
    await once.run('a', work);
    await once.run('b', work);
    once.forget('a');
    expect(once.done('a')).toBe(false);
    expect(once.done('b')).toBe(true);
    await once.run('a', work);
    expect(runs).toBe(3);
    const late = once.run('c', work);
    once.clear();
    await late;
    expect(once.done('c')).toBe(false);
    expect(once.done('b')).toBe(false);
  });
});
