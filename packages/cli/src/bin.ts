#!/usr/bin/env node
import { readFileSync } from 'node:fs';
import { run } from './program.js';

const { version } = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as {
  version: string;
};
process.exitCode = await run(process.argv.slice(2), version);
// Everything is closed by now; a client library's stray timer must not keep a finished command alive.
setTimeout(() => process.exit(process.exitCode), 1000).unref();
