import { connect } from '@omnibus/core';
import { expect, it } from 'vitest';
import { runPipeline } from '../src/pipeline.js';

it('pays the good orders, retries the flaky one, dead-letters the poison one and replays the audit trail', async () => {
  const bus = await connect('memory://quickstart-test');
  const lines: string[] = [];
  try {
    const outcome = await runPipeline(bus, (line) => lines.push(line));
    expect(outcome.paid.sort()).toEqual(['A-1', 'A-2', 'A-3', 'A-5']);
    expect(outcome.dead).toEqual(['A-4']);
    expect(outcome.billing.sort()).toEqual(['A-1', 'A-2', 'A-3', 'A-5']);
    expect(outcome.eu.sort()).toEqual(['A-1', 'A-3', 'A-5']);
    expect(outcome.trail).toContain('A-2 charging (attempt 2)');
    expect(outcome.trail).toContain('A-4 dead-lettered: payment provider timed out');
    expect(outcome.trail.filter((t) => t.startsWith('A-4 charging'))).toHaveLength(3);
    expect(lines.some((l) => l.includes('rejected before sending') && l.includes('region'))).toBe(true);
  } finally {
    await bus.close();
  }
});
