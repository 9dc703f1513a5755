import { describe, expect, it } from 'vitest';
import { Deadlines } from '../src/deadlines.js';
import { until } from './helpers.js';

describe('Deadlines', () => {
  it('fires due deadlines of every duration, and never a removed one', async () => {
    const deadlines = new Deadlines(10);
    const fired: string[] = [];
    deadlines.add(30, () => fired.push('a30'));
    const removed = deadlines.add(30, () => fired.push('removed'));
    deadlines.add(10, () => fired.push('b10'));
    deadlines.add(30, () => fired.push('c30'));
    deadlines.add(60_000, () => fired.push('late'));
    deadlines.remove(removed);
    deadlines.remove(removed);
    await until(() => fired.length >= 3, 2000);
    expect(fired.sort()).toEqual(['a30', 'b10', 'c30']);
    deadlines.stop();
  });

  it('keeps going after the list of a duration empties', async () => {
    const deadlines = new Deadlines(5);
    let count = 0;
    deadlines.add(5, () => count++);
    await until(() => count === 1, 2000);
    deadlines.add(5, () => count++);
    await until(() => count === 2, 2000);
    expect(count).toBe(2);
    deadlines.stop();
  });
});
