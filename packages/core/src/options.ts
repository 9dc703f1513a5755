/**
 * Adapter options, declared once: each adapter writes a spec (name → type, range or values,
 * default, and a doc comment that becomes the option's documentation in editors) and core reads
 * URL query strings and object values alike against it. Unknown names are refused with the
 * closest known one, and every problem comes back in one `ConfigError`.
 */
import { z } from 'zod';
import { redactUrl } from './url.js';

/** One option: how a value is checked (strings from a URL query coerced) and what it is when unset. */
export interface Option<T, HasDefault extends boolean = boolean> {
  readonly schema: z.ZodType<T>;
  readonly default?: T | undefined;
  readonly hasDefault: HasDefault;
}

export type OptionSpecs = Readonly<Record<string, Option<unknown>>>;

/** What a user may pass: every option optional (doc comments follow from the spec's keys). */
export type OptionsOf<S extends OptionSpecs> = {
  readonly [K in keyof S]?: (S[K] extends Option<infer T> ? T : never) | undefined;
};

/** What the adapter reads: defaults applied, options without a default possibly `undefined`. */
export type ResolvedOptions<S extends OptionSpecs> = {
  readonly [K in keyof S]: S[K] extends Option<infer T, infer D>
    ? D extends true
      ? T
      : T | undefined
    : never;
};

type Defaulted<T, D> = Option<T, [D] extends [undefined] ? false : true>;

function make<T, D extends T | undefined>(schema: z.ZodType<T>, fallback: D): Defaulted<T, D> {
  return { schema, default: fallback, hasDefault: (fallback !== undefined) as never };
}

interface Range<D> {
  readonly min?: number;
  readonly max?: number;
  readonly default?: D;
}

/** Option kinds. Numbers and booleans are coerced, since a URL query carries only strings. */
export const option = {
  /** An integer, from `5` or `"5"`; `min` defaults to 0. */
  int: <const D extends number | undefined = undefined>({ min = 0, max, default: d }: Range<D> = {}) =>
    make(
      max === undefined ? z.coerce.number().int().min(min) : z.coerce.number().int().min(min).max(max),
      d as D,
    ),
  /** A positive number of milliseconds. */
  ms: <const D extends number | undefined = undefined>(d?: D) =>
    make(z.coerce.number().int().positive(), d as D),
  /** `true`/`false` or the strings `true|false|1|0|yes|no|on|off`. */
  bool: <const D extends boolean | undefined = undefined>(d?: D) =>
    make(z.union([z.boolean(), z.stringbool()]), d as D),
  /** One of a few strings, or numbers (given as numbers or their strings). */
  oneOf: <
    const V extends readonly [string, ...string[]] | readonly [number, ...number[]],
    const D extends V[number] | undefined = undefined,
  >(
    values: V,
    d?: D,
  ) => {
    const message = `must be ${values.slice(0, -1).join(', ')} or ${values.at(-1)}`;
    const schema =
      typeof values[0] === 'number'
        ? z.coerce.number().pipe(z.literal(values as readonly number[], { error: message }))
        : z.enum(values as readonly [string, ...string[]], { error: message });
    return make(schema as unknown as z.ZodType<V[number]>, d as D);
  },
  /** A string of `min` (default 1) to `max` characters, matching `pattern` when given (`hint` says how). */
  string: <const D extends string | undefined = undefined>({
    min = 1,
    max,
    pattern,
    default: d,
  }: Range<D> & { readonly pattern?: readonly [RegExp, string] } = {}) => {
    let schema = z.string().min(min);
    if (max !== undefined) schema = schema.max(max);
    if (pattern !== undefined) schema = schema.regex(pattern[0], pattern[1]);
    return make(schema, d as D);
  },
  /** Any zod schema, for shapes the kinds above do not cover. */
  of: <T, const D extends T | undefined = undefined>(schema: z.ZodType<T>, d?: D) => make(schema, d as D),
};

/**
 * One issue per key of `value` (a plain object) that is not in `known`, naming the known ones and
 * the closest: options are checked, never ignored, so a misspelt one fails instead of doing nothing.
 */
export function unknownKeys(where: string, value: unknown, known: readonly string[]): string[] {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return [];
  return Object.keys(value)
    .filter((key) => !known.includes(key))
    .map((key) => {
      const near = closest(key, known);
      const hint = near === undefined ? '' : `; did you mean "${near}"?`;
      const list = known.length === 0 ? 'it takes none' : `known: ${known.join(', ')}`;
      return `${where === '' ? '' : `${where}: `}unknown option "${printable(key)}"; ${list}${hint}`;
    });
}

/** The known name nearest to `key` (case-insensitive edit distance), if it is near enough to be a typo. */
function closest(key: string, known: readonly string[]): string | undefined {
  const lower = key.toLowerCase();
  let best: string | undefined;
  let bestDistance = Math.max(2, Math.floor(key.length / 3)) + 1;
  for (const name of known) {
    const other = name.toLowerCase();
    const prefix =
      Math.min(key.length, name.length) >= 4 && (other.startsWith(lower) || lower.startsWith(other));
    const d = prefix ? 1 : distance(lower, other);
    if (d < bestDistance) [best, bestDistance] = [name, d];
  }
  return best;
}

function distance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) {
      row[j] = Math.min(
        previous[j]! + 1,
        row[j - 1]! + 1,
        previous[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1),
      );
    }
    previous = row;
  }
  return previous[b.length]!;
}

function printable(key: string): string {
  return key.length > 60 ? `${key.slice(0, 60)}…` : key.replace(/[^\x20-\x7e]/g, '?');
}

export function zodIssues(error: z.ZodError, root: string): string[] {
  return error.issues.map((issue) => {
    const path = [root, ...issue.path.map(String)].filter((part) => part !== '').join('.') || 'options';
    return redactUrl(`${path}: ${issue.message}`);
  });
}
