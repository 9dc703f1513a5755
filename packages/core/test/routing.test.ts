import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  matchSubject,
  ValidationError,
  validateName,
  validatePattern,
  validateSubject,
} from '../src/index.js';

describe('subject patterns', () => {
  const cases: [string, string | undefined, boolean][] = [
    ['orders.*.created', 'orders.eu.created', true],
    ['orders.*.created', 'orders.created', false],
    ['orders.*.created', 'orders.eu.de.created', false],
    ['orders.#', 'orders', true],
    ['orders.#', 'orders.eu.created', true],
    ['orders.#', 'ordersx', false],
    ['#', 'anything.at.all', true],
    ['#', undefined, true],
    ['*', undefined, false],
    ['a', undefined, false],
    ['#.created', 'created', true],
    ['#.created', 'a.b.created', true],
    ['#.created', 'a.b.deleted', false],
    ['a.#.z', 'a.z', true],
    ['a.#.z', 'a.b.c.z', true],
    ['a.#.z', 'a.b.c', false],
    ['#.#', 'x', true],
    ['*.#.*', 'x', false],
    ['*.#.*', 'x.y', true],
    ['a.b', 'a.b', true],
    ['a.b', 'a.b.c', false],
  ];
  it.each(cases)('%s against %s → %s', (pattern, subject, expected) => {
    expect(matchSubject(pattern, subject)).toBe(expected);
  });

  it('matches a pattern of words and "*" as word-by-word comparison does, for any subject', () => {
    // The rule spelled out: as many words, each literal word equal (a `*` takes any one word).
    const reference = (pattern: string, subject: string | undefined): boolean => {
      if (subject === undefined) return false;
      const words = pattern.split('.');
      const parts = subject.split('.');
      return parts.length === words.length && words.every((w, i) => w === '*' || w === parts[i]);
    };
    const word = fc.constantFrom('a', 'b', 'ab', '*', 'x-1', 'a_b');
    const pattern = fc.array(word, { minLength: 1, maxLength: 5 }).map((w) => w.join('.'));
    const unit = fc.constantFrom('a', 'b', '.', '-', '1', '_', 'x', '*', '\n', '$', '(');
    const subject = fc.oneof(
      fc.string({ unit, maxLength: 14 }),
      // Subjects built from the patterns' own words, so that many of them match.
      fc
        .array(fc.constantFrom('a', 'b', 'ab', 'x-1', 'a_b', ''), { minLength: 1, maxLength: 5 })
        .map((w) => w.join('.')),
      fc.constant(undefined),
    );
    fc.assert(
      fc.property(pattern, subject, (p, s) => matchSubject(p, s) === reference(p, s)),
      { numRuns: 5000 },
    );
  });

  it('does not blow up on many # words', () => {
    const started = Date.now();
    expect(matchSubject('#.#.#.#.#.#.#.#.#.#.#.x', `${'a.'.repeat(40)}y`)).toBe(false);
    expect(Date.now() - started).toBeLessThan(2000);
  });
});

describe('validation', () => {
  it('accepts portable names and rejects the rest', () => {
    expect(validateName('queue', 'orders.eu_1-x')).toBe('orders.eu_1-x');
    for (const bad of ['', '-x', '.x', 'a b', 'a/b', 'é', 'x'.repeat(201)]) {
      expect(() => validateName('queue', bad)).toThrow(ValidationError);
    }
  });

  it('rejects wildcards and empty words in subjects', () => {
    expect(validateSubject('orders.eu.created')).toBe('orders.eu.created');
    for (const bad of ['orders.*', 'orders.#', 'a..b', '.a', 'a.', 'a+b', 'a/b', 'x'.repeat(256)]) {
      expect(() => validateSubject(bad)).toThrow(ValidationError);
    }
  });

  it('accepts a subject exactly when every dot-separated word is letters, digits, "_" or "-"', () => {
    // The rule word by word, as the docs state it; validateSubject tests the whole subject at once.
    const valid = (subject: string) =>
      subject.length > 0 &&
      subject.length <= 255 &&
      subject.split('.').every((w) => /^[A-Za-z0-9_-]+$/.test(w));
    const accepts = (subject: string) => {
      try {
        return validateSubject(subject) === subject;
      } catch (error) {
        expect(error).toBeInstanceOf(ValidationError);
        return false;
      }
    };
    const unit = fc.constantFrom('a', 'Z', '0', '_', '-', '.', '*', '#', ' ', '\n', 'é', '/', '+');
    fc.assert(
      fc.property(fc.string({ unit, maxLength: 12 }), (subject) => accepts(subject) === valid(subject)),
      { numRuns: 2000 },
    );
    for (const long of ['a'.repeat(255), 'a'.repeat(256), `${'a.'.repeat(127)}a`, `${'a.'.repeat(127)}ab`]) {
      expect(accepts(long)).toBe(valid(long));
    }
    expect(accepts('a\n')).toBe(false);
  });

  it('accepts * and # as whole words only in patterns', () => {
    expect(validatePattern('a.*.#')).toBe('a.*.#');
    for (const bad of ['', 'a*', 'a.#b', 'a..b', 'a/#']) {
      expect(() => validatePattern(bad)).toThrow(ValidationError);
    }
  });
});
