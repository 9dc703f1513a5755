import { readFileSync } from 'node:fs';
import { capabilityTable } from '@omnibus/core';
import { expect, it } from 'vitest';
import { KAFKA_CAPABILITIES } from '../src/index.js';

it('the README capability table matches KAFKA_CAPABILITIES', () => {
  const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');
  const table = /<!-- capability-table[^>]*-->\n([\s\S]*?)\n<!-- \/capability-table -->/.exec(readme)?.[1];
  expect(table).toBe(capabilityTable({ kafka: KAFKA_CAPABILITIES }));
});
