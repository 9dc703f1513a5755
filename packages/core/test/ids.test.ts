import { describe, expect, it } from 'vitest';
import { newId, POOL_IDS } from '../src/ids.js';

const UUID_V4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

describe('message ids', () => {
  it('are version 4 UUIDs, unique across many refills of the random pool', () => {
    const count = POOL_IDS * 3 + 7;
    const ids = new Set<string>();
    for (let i = 0; i < count; i++) {
      const id = newId();
      expect(id).toMatch(UUID_V4);
      ids.add(id);
    }
    expect(ids.size).toBe(count);
  });

  it('are strings of their own: a later id does not change an earlier one', () => {
    const first = newId();
    const copy = `${first}`;
    for (let i = 0; i < POOL_IDS + 10; i++) newId();
    expect(first).toBe(copy);
  });

  it('use every hex digit in every random position (no byte is lost or fixed)', () => {
    // 122 random bits; 4,000 ids give each position every one of its values with near certainty
    // (a digit missing from one position after 4,000 draws: 16 × (15/16)^4000 ≈ 10^-111).
    const seen = Array.from({ length: 36 }, () => new Set<string>());
    for (let i = 0; i < 4000; i++) {
      const id = newId();
      for (let p = 0; p < 36; p++) seen[p]!.add(id[p]!);
    }
    for (let p = 0; p < 36; p++) {
      const values = seen[p]!;
      if (p === 8 || p === 13 || p === 18 || p === 23) expect([...values]).toEqual(['-']);
      else if (p === 14) expect([...values]).toEqual(['4']);
      else if (p === 19) expect([...values].sort()).toEqual(['8', '9', 'a', 'b']);
      else expect(values.size, `position ${p}`).toBe(16);
    }
  });
});
