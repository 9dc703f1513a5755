/** `--requires queue,replay=native`: the same shape as `connect`'s `requires`. */
import { FEATURES, type Feature, type Support } from '@omnibus/core';
import { InvalidArgumentError } from 'commander';
import { parseList } from './options.js';

const LEVELS: readonly Support[] = ['native', 'emulated'];

/** A list of features, each at least `emulated`, or `feature=native|emulated`. */
export function parseRequires(value: string): Partial<Record<Feature, Support>> {
  const out: Partial<Record<Feature, Support>> = {};
  for (const item of parseList(value)) {
    const [name = '', level = 'emulated'] = item.split('=');
    if (!(FEATURES as readonly string[]).includes(name))
      throw new InvalidArgumentError(`unknown capability "${name}"; one of ${FEATURES.join(', ')}.`);
    if (!(LEVELS as readonly string[]).includes(level))
      throw new InvalidArgumentError(`"${item}": the level is native or emulated.`);
    out[name as Feature] = level as Support;
  }
  if (Object.keys(out).length === 0) throw new InvalidArgumentError('name at least one capability.');
  return out;
}
