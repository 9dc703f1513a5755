import { readFileSync } from 'node:fs';
import { capabilityTable, MEMORY_CAPABILITIES } from '@omnibus/core';
import { expect, it } from 'vitest';

it('the README capability table is the one the adapters declare', () => {
  const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');
  const table = readme.split('<!-- capabilities:start -->\n')[1]?.split('\n<!-- capabilities:end -->')[0];
  expect(table).toBe(capabilityTable({ memory: MEMORY_CAPABILITIES }));
});
