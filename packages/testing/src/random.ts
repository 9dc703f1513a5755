/**
 * A small seeded PRNG (mulberry32): the same seed gives the same faults, in the same places, on
 * every run, so a failure found with a seed can be replayed with it.
 */
export interface Random {
  readonly seed: number;
  /** A float in [0, 1). */
  next(): number;
  /** True with probability `p` (0 never draws, so rates of 0 do not shift the sequence). */
  chance(p: number | undefined): boolean;
  /** An integer in [min, max]. */
  between(min: number, max: number): number;
}

export function seededRandom(seed: number): Random {
  let state = seed >>> 0;
  const next = (): number => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return {
    seed,
    next,
    chance: (p) => p !== undefined && p > 0 && next() < p,
    between: (min, max) => min + Math.floor(next() * (max - min + 1)),
  };
}

/** A seed for a run that did not give one: printed in timeout errors so the run can be replayed. */
export function randomSeed(): number {
  return Math.floor(Math.random() * 2 ** 31);
}
