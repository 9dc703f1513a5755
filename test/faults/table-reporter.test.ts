// The fault suite's table is read from the result lines the tests print: this keeps the two in step
// (it runs with `pnpm test`; the fault suite itself does not).
import { describe, expect, it, vi } from 'vitest';
import { report } from './harness.js';
import { parseResultLine } from './table-reporter.js';

describe('fault suite table', () => {
  it('reads back every column of the line report() prints', () => {
    const info = vi.spyOn(console, 'info').mockImplementation(() => undefined);
    try {
      report({
        setup: 'stomp → rabbitmq',
        fault: 'connection reset',
        counts: { sent: 160, confirmed: 158, lost: 0, duplicates: 3, unconfirmedArrived: 1 },
        recover: { ms: 1234, from: 'after the reset' },
        key: 'detected 2.50 s',
        timings: { 'producer reconnected': 300 },
        notes: 'failed sends: ConnectionError 2',
      });
      report({
        setup: 'kafka',
        fault: 'blackhole',
        counts: { sent: 5, confirmed: 5, lost: 2, duplicates: 0, unconfirmedArrived: 0 },
        recover: { ms: undefined, from: 'after heal' },
      });
      const rows = info.mock.calls.map(([line]) => parseResultLine(String(line)));
      expect(rows).toEqual([
        {
          setup: 'stomp → rabbitmq',
          fault: 'connection reset',
          sent: '160',
          confirmed: '158',
          lost: '0',
          duplicates: '3',
          unconfirmed: '1',
          recover: '1.23 s after the reset',
          key: 'detected 2.50 s',
          outcome: 'passed',
        },
        {
          setup: 'kafka',
          fault: 'blackhole',
          sent: '5',
          confirmed: '5',
          lost: '2',
          duplicates: '0',
          unconfirmed: '0',
          recover: 'never',
          key: '',
          outcome: 'passed',
        },
      ]);
      expect(parseResultLine('[faults] skipping kafka: not reachable')).toBeUndefined();
    } finally {
      info.mockRestore();
    }
  });
});
