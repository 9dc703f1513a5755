import { readFileSync } from 'node:fs';
import { capabilityTable } from '@omnibus/core';
import { expect, it } from 'vitest';
import { capabilityColumns } from './capability-columns.js';

/** A Markdown table as rows of trimmed cells, separator row dropped: formatting does not matter. */
function cells(table: string): string[][] {
  return table
    .trim()
    .split('\n')
    .map((line) =>
      line
        .trim()
        .replace(/^\||\|$/g, '')
        .split('|')
        .map((cell) => cell.trim()),
    )
    .filter((row) => !row.every((cell) => /^:?-+:?$/.test(cell)));
}

it('the README capability table is the one the adapters declare (pnpm readme:capabilities rewrites it)', async () => {
  const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');
  const table = readme.split('<!-- capabilities:start -->')[1]?.split('<!-- capabilities:end -->')[0] ?? '';
  expect(cells(table)).toEqual(cells(capabilityTable(await capabilityColumns())));
});
