/**
 * docs/testing.md's examples run as printed (their code between the markers), and each is shown to
 * catch what it is about: without the idempotency check, or with a plain `priority`, it fails.
 */
import { readFileSync } from 'node:fs';
import { UnsupportedCapabilityError } from '@omnibus/core';
import * as testing from '@omnibus/testing';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';

const doc = readFileSync(new URL('../../../docs/testing.md', import.meta.url), 'utf8');

/** The ```ts block between `<!-- testing-example:<name>:start -->` and its end marker. */
function example(name: string): string {
  const section = doc
    .split(`<!-- testing-example:${name}:start -->`)[1]
    ?.split(`<!-- testing-example:${name}:end -->`)[0];
  const code = section === undefined ? undefined : /```ts\n([\s\S]*?)```/.exec(section)?.[1];
  if (code === undefined)
    throw new Error(`docs/testing.md has no \`\`\`ts block between the ${name} markers`);
  return code;
}

type Test = { readonly name: string; readonly run: () => Promise<void> };
type Outcome = { readonly name: string; readonly error: unknown };
type AsyncFunctionConstructor = new (...args: string[]) => (...args: unknown[]) => Promise<void>;
const AsyncFunction = Object.getPrototypeOf(async () => undefined).constructor as AsyncFunctionConstructor;
const MODULES: Readonly<Record<string, Record<string, unknown>>> = { '@omnibus/testing': testing };

/** Runs the example's tests (its `it` and `it.each`) with vitest's `expect`; one outcome each. */
async function run(code: string): Promise<Outcome[]> {
  const names: string[] = [];
  const values: unknown[] = [];
  const body = code
    .replace(/^import type .*\n/gm, '')
    .replace(/^import \{ ([^}]+) \} from '([^']+)';\n/gm, (_, imported: string, from: string) => {
      if (from === 'vitest') return '';
      const module = MODULES[from];
      if (module === undefined) throw new Error(`the example imports ${from}: add it to MODULES`);
      for (const name of imported.split(',').map((n) => n.trim())) {
        names.push(name);
        values.push(module[name]);
      }
      return '';
    })
    .replace(/^export /gm, '');
  const js = ts.transpileModule(body, {
    compilerOptions: { target: ts.ScriptTarget.ES2022, module: ts.ModuleKind.ESNext },
  }).outputText;
  const tests: Test[] = [];
  const collect = (name: string, fn: () => Promise<void>) => void tests.push({ name, run: fn });
  const each = (cases: readonly unknown[]) => (name: string, fn: (value: unknown) => Promise<void>) => {
    for (const value of cases) collect(name.replace('%s', String(value)), () => fn(value));
  };
  await new AsyncFunction(...names, 'it', 'expect', js)(...values, Object.assign(collect, { each }), expect);
  const outcomes: Outcome[] = [];
  for (const test of tests) {
    outcomes.push({
      name: test.name,
      error: await test.run().then(
        () => undefined,
        (e: unknown) => e,
      ),
    });
  }
  return outcomes;
}

const passed = (outcomes: Outcome[]) => outcomes.filter((o) => o.error === undefined).map((o) => o.name);
const failed = (outcomes: Outcome[]) => outcomes.filter((o) => o.error !== undefined);

describe('docs/testing.md', () => {
  it('idempotency: passes as printed, and fails without the idempotency check', async () => {
    const code = example('idempotency');
    const printed = await run(code);
    expect(failed(printed)).toEqual([]);
    expect(passed(printed)).toEqual(['charges once when the broker delivers a payment twice']);

    const check = /^.*already charged.*\n/m;
    expect(code).toMatch(check);
    const broken = await run(code.replace(check, ''));
    expect(failed(broken)).toHaveLength(1);
    expect(String(failed(broken)[0]?.error)).toMatch(/AssertionError/);
  });

  it('priority: passes as printed on every profile, and a plain priority fails on kafka', async () => {
    const code = example('priority');
    const printed = await run(code);
    expect(failed(printed)).toEqual([]);
    expect(passed(printed)).toEqual([
      'places an urgent order on rabbitmq',
      'places an urgent order on kafka',
      'places an urgent order on stomp-activemq',
    ]);

    const choice = /^ {2}if \(bus\.capabilities\.priority === 'none'\) \{\n[\s\S]*?\n {2}\}\n/m;
    expect(code).toMatch(choice);
    const broken = await run(code.replace(choice, ''));
    expect(failed(broken).map((o) => o.name)).toEqual(['places an urgent order on kafka']);
    expect(failed(broken)[0]?.error).toBeInstanceOf(UnsupportedCapabilityError);
    expect(String(failed(broken)[0]?.error)).toMatch(
      /UnsupportedCapabilityError: .*priority is not supported/,
    );
  });
});
