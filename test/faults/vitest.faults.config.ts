/**
 * The fault suite (`pnpm test:faults`): the root config's aliases (tests run on the packages'
 * TypeScript sources), only `test/faults/*.fault.ts`, one file at a time, in a fixed order — the
 * network faults and SIGKILL first, then the files that restart and stop brokers, the Kafka
 * cluster last (it re-forms Kafka as three nodes and back to one). `pnpm test` never runs these:
 * its include is `*.test.ts`. The table reporter prints every result line as one table at the end.
 */
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';
import { BaseSequencer, type TestSpecification } from 'vitest/node';
import base from '../../vitest.config.js';
import FaultTable from './table-reporter.js';

const ORDER = ['network', 'sigkill', 'restart', 'outage', 'kafka-cluster'];
const rank = (file: string) => {
  const at = ORDER.findIndex((name) => file.endsWith(`/${name}.fault.ts`));
  return at < 0 ? ORDER.length : at;
};

class FaultOrder extends BaseSequencer {
  override async sort(files: TestSpecification[]): Promise<TestSpecification[]> {
    return [...files].sort((a, b) => rank(a.moduleId) - rank(b.moduleId));
  }
}

export default defineConfig({
  ...base,
  root: fileURLToPath(new URL('../../', import.meta.url)),
  test: {
    ...base.test,
    include: ['test/faults/*.fault.ts'],
    fileParallelism: false,
    testTimeout: 120_000,
    hookTimeout: 300_000,
    sequence: { sequencer: FaultOrder },
    // The usual output, then one table of every set-up and fault (sent / confirmed / lost / …).
    reporters: ['default', new FaultTable()],
  },
});
