import { readFileSync } from 'node:fs';
import { capabilityTable } from '@omnibus/core';
import { markedSection, tableCells } from '@omnibus/test-brokers';
import { expect, it } from 'vitest';
import { capabilityColumns } from './capability-columns.js';

it('the README capability table is the one the adapters declare (pnpm readme:capabilities rewrites it)', async () => {
  const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');
  const table = markedSection(readme, 'capabilities');
  expect(tableCells(table)).toEqual(tableCells(capabilityTable(await capabilityColumns())));
});
