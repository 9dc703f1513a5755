import { readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

// Tests run on the TypeScript sources of every workspace package, not on dist/,
// so `pnpm test` needs no build first.
const packagesDir = fileURLToPath(new URL('./packages/', import.meta.url));
const alias = readdirSync(packagesDir).map((dir) => ({
  find: new RegExp(`^@omnibus/${dir}$`),
  replacement: `${packagesDir}${dir}/src/index.ts`,
}));

export default defineConfig({
  resolve: { alias },
  test: {
    include: [
      'packages/*/test/**/*.test.ts',
      'packages/*/src/**/*.test.ts',
      'examples/*/test/**/*.test.ts',
      'test/**/*.test.ts',
      'bench/test/**/*.test.ts',
    ],
    testTimeout: 30_000,
    // Broker suites restart shared brokers (scripts/brokers.sh restart …): one test file at a time,
    // so a restart never pulls a broker from under another file's tests.
    fileParallelism: false,
    hookTimeout: 60_000,
    reporters: ['default'],
  },
});
