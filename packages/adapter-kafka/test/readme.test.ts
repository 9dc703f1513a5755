import { readFileSync } from 'node:fs';
import { capabilityTable } from '@omnibus/core';
import { headingSection, markedSection, tableCells } from '@omnibus/test-brokers';
import { describe, expect, it } from 'vitest';
import { KAFKA_CAPABILITIES } from '../src/index.js';
import { OPTION_NAMES } from '../src/options.js';

const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');

describe('README', () => {
  it('shows the capability table of KAFKA_CAPABILITIES', () => {
    const table = markedSection(readme, 'capabilities');
    expect(tableCells(table)).toEqual(tableCells(capabilityTable({ kafka: KAFKA_CAPABILITIES })));
  });

  it('documents every option, and only options that exist', () => {
    const documented = tableCells(headingSection(readme, '## Options'))
      .slice(1)
      .flatMap(([names]) => [...(names ?? '').matchAll(/`(\w+)`/g)].map((m) => m[1]!));
    expect(documented.sort()).toEqual([...OPTION_NAMES].sort());
  });
});
