/**
 * Rewrites the capability table in README.md from what the adapters declare.
 * Run: `pnpm readme:capabilities` (test/readme.test.ts fails when the README is stale).
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { capabilityTable } from '@omnibus/core';
import { capabilityColumns } from '../test/capability-columns.js';

const path = new URL('../README.md', import.meta.url);
const readme = readFileSync(path, 'utf8');
const [before, rest] = readme.split('<!-- capabilities:start -->');
const after = rest?.split('<!-- capabilities:end -->')[1];
if (before === undefined || after === undefined) throw new Error('README.md has no capabilities markers');
const table = capabilityTable(await capabilityColumns());
writeFileSync(path, `${before}<!-- capabilities:start -->\n${table}\n<!-- capabilities:end -->${after}`);
console.log(table);
