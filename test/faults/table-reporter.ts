/**
 * The fault suite's summary: collects the `[faults]` result line each test prints (harness.ts
 * `report`) and, when the run ends, prints one table row per set-up and fault — sent, confirmed,
 * lost (must be 0), duplicates, time to recover and the test's outcome. A test that failed before
 * it could print its line gets a row too, so the table never hides a failure.
 */
import type { Reporter, TestCase, Vitest } from 'vitest/node';

type UserConsoleLog = Parameters<NonNullable<Reporter['onUserConsoleLog']>>[0];

interface Row {
  setup: string;
  fault: string;
  sent: string;
  confirmed: string;
  lost: string;
  duplicates: string;
  unconfirmed: string;
  recover: string;
  key: string;
  outcome: string;
}

const COLUMNS: readonly (readonly [keyof Row, string])[] = [
  ['setup', 'set-up'],
  ['fault', 'fault'],
  ['sent', 'sent'],
  ['confirmed', 'confirmed'],
  ['lost', 'lost'],
  ['duplicates', 'duplicates'],
  ['unconfirmed', 'unconfirmed-delivered'],
  ['recover', 'time to recover'],
  ['key', 'measured'],
  ['outcome', 'test'],
];

/** `[faults] a | b | sent 1 | …` → the row, or undefined for any other line. */
export function parseResultLine(line: string): Row | undefined {
  if (!line.startsWith('[faults] ')) return undefined;
  const fields = line.slice('[faults] '.length).split(' | ');
  if (fields.length < 9) return undefined;
  const value = (field: string | undefined, name: string) =>
    field?.startsWith(`${name} `) ? field.slice(name.length + 1) : '?';
  return {
    setup: fields[0]!,
    fault: fields[1]!,
    sent: value(fields[2], 'sent'),
    confirmed: value(fields[3], 'confirmed'),
    lost: value(fields[4], 'lost'),
    duplicates: value(fields[5], 'duplicates'),
    unconfirmed: value(fields[6], 'unconfirmed-but-delivered'),
    recover: value(fields[7], 'recover'),
    key: fields[8]!,
    outcome: 'passed',
  };
}

export default class FaultTable implements Reporter {
  private vitest: Vitest | undefined;
  /** Rows by the id of the test that printed them, in the order printed. */
  private readonly rows = new Map<string, Row[]>();
  private readonly failed: { id: string; name: string }[] = [];

  onInit(vitest: Vitest): void {
    this.vitest = vitest;
  }

  onUserConsoleLog(log: UserConsoleLog): void {
    for (const line of log.content.split('\n')) {
      const row = parseResultLine(line.trim());
      if (row === undefined) continue;
      const id = log.taskId ?? '';
      this.rows.set(id, [...(this.rows.get(id) ?? []), row]);
    }
  }

  onTestCaseResult(testCase: TestCase): void {
    const state = testCase.result().state;
    if (state !== 'failed') return;
    const rows = this.rows.get(testCase.id);
    if (rows !== undefined) for (const row of rows) row.outcome = 'FAILED';
    else this.failed.push({ id: testCase.id, name: testCase.fullName });
  }

  onTestRunEnd(): void {
    const rows = [...this.rows.values()].flat();
    for (const { name } of this.failed) {
      rows.push({
        setup: name,
        fault: '',
        sent: '',
        confirmed: '',
        lost: '',
        duplicates: '',
        unconfirmed: '',
        recover: '',
        key: '(failed before it could count)',
        outcome: 'FAILED',
      });
    }
    if (rows.length === 0) return;
    const widths = COLUMNS.map(([key, title]) => Math.max(title.length, ...rows.map((r) => r[key].length)));
    const line = (cells: readonly string[]) =>
      `| ${cells.map((cell, i) => cell.padEnd(widths[i]!)).join(' | ')} |`;
    const lost = rows.reduce((sum, r) => sum + (Number(r.lost) || 0), 0);
    const text = [
      '',
      `[faults] summary: ${rows.length} results, lost ${lost} in all (must be 0)`,
      line(COLUMNS.map(([, title]) => title)),
      `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`,
      ...rows.map((r) => line(COLUMNS.map(([key]) => r[key]))),
      '',
    ].join('\n');
    if (this.vitest !== undefined) this.vitest.logger.log(text);
    else process.stdout.write(`${text}\n`);
  }
}
