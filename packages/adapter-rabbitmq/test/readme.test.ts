import { readFileSync } from 'node:fs';
import { capabilityTable } from '@omnibus/core';
import { markedSection, tableCells } from '@omnibus/test-brokers';
import { describe, expect, it } from 'vitest';
import { rabbitmqCapabilities } from '../src/index.js';
import { OPTION_NAMES } from '../src/options.js';

const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');

describe('README', () => {
  it('shows the capability table the code declares', () => {
    const table = markedSection(readme, 'capabilities');
    expect(tableCells(table)).toEqual(tableCells(capabilityTable({ rabbitmq: rabbitmqCapabilities() })));
  });

  it('documents every option, and only options that exist', () => {
    const section = readme.slice(readme.indexOf('## Options'), readme.indexOf('## Tests'));
    const documented = new Set(
      section
        .split('\n')
        .filter((line) => line.startsWith('| `'))
        .flatMap((line) => [...line.split('|')[1]!.matchAll(/`([A-Za-z]+)`/g)].map((m) => m[1]!)),
    );
    expect([...documented].sort()).toEqual([...OPTION_NAMES].sort());
  });
});
