import { readFileSync } from 'node:fs';
import { capabilityTable } from '@omnibus/core';
import { describe, expect, it } from 'vitest';
import { rabbitmqCapabilities } from '../src/index.js';
import { OPTION_NAMES } from '../src/options.js';

const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');

/** A Markdown table's cells, row by row, whatever its column padding (formatters align it). */
function cells(table: string): string[][] {
  return table
    .trim()
    .split('\n')
    .filter((line) => !/^\|[\s|:-]+\|$/.test(line.trim()))
    .map((line) =>
      line
        .trim()
        .replace(/^\||\|$/g, '')
        .split('|')
        .map((cell) => cell.trim()),
    );
}

describe('README', () => {
  it('shows the capability table the code declares', () => {
    const start = readme.indexOf('<!-- capabilities:start');
    const end = readme.indexOf('<!-- capabilities:end -->');
    expect(start).toBeGreaterThan(0);
    const table = readme.slice(readme.indexOf('\n', start) + 1, end).trim();
    expect(cells(table)).toEqual(cells(capabilityTable({ rabbitmq: rabbitmqCapabilities() })));
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
