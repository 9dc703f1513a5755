import { readFileSync } from 'node:fs';
import { capabilityTable } from '@omnibus/core';
import { expect, it } from 'vitest';
import { KAFKA_CAPABILITIES } from '../src/index.js';

/** Table rows as trimmed cells, so the formatter's column padding does not matter. */
function cells(table: string): string[][] {
  return table
    .trim()
    .split('\n')
    .filter((line) => !/^\|[\s|:-]+\|$/.test(line))
    .map((line) =>
      line
        .replace(/^\||\|$/g, '')
        .split('|')
        .map((cell) => cell.trim()),
    );
}

it('the README capability table matches KAFKA_CAPABILITIES', () => {
  const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');
  const table = /<!-- capability-table[^>]*-->\n([\s\S]*?)\n<!-- \/capability-table -->/.exec(readme)?.[1];
  expect(table).toBeDefined();
  expect(cells(table!)).toEqual(cells(capabilityTable({ kafka: KAFKA_CAPABILITIES })));
});
