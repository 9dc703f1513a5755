/**
 * `pnpm bench [target…] [flags]` — runs raw-vs-Omnibus pairs at several pipeline depths, prints a
 * table with the ratios and writes bench/results/<timestamp>.json and latest.json.
 * Targets: memory (default), rabbitmq, mqtt, kafka, stomp-rabbitmq, stomp-activemq, channels,
 * otel-<target>. Flags (each also an environment variable):
 * - `--depths=1,100,500` (BENCH_DEPTHS): messages in flight, one row per pair and depth.
 * - `--rounds=N` (BENCH_ROUNDS, default 3, 1 with --quick): alternating rounds per pair and depth.
 * - `--quick` (BENCH_QUICK=1): a quarter of the messages per round, for a small run.
 * - `--out=DIR` (BENCH_OUT, default bench/results): where the results JSON goes.
 * - `--profile[=TEXT]` (BENCH_PROFILE=1 or TEXT): instead of the run, profiles the first pair whose
 *   name contains TEXT, at the deepest depth (`--profile-depth=N`, BENCH_PROFILE_DEPTH), into
 *   bench/results/profiles/. BENCH_PROFILE_KIND=alloc profiles allocations instead (bytes a
 *   message per allocating function, garbage included).
 * - `--chart[=FILE]`: renders FILE (default bench/results/latest.json) into docs/bench-*.svg; no run.
 * - `--summarize=FILE.cpuprofile`: prints the top 20 self-time functions of a profile; no run.
 */
import { mkdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import {
  compare,
  countAt,
  DEFAULT_DEPTHS,
  MESSAGE_BYTES,
  type Result,
  type Scenario,
  table,
} from './harness.js';
import { memoryScenarios } from './memory.js';
import {
  type BenchRun,
  loadNow,
  machineAtStart,
  type PairResult,
  pairResult,
  readRun,
  writeRun,
} from './results.js';

const TARGETS: Record<string, () => Promise<Scenario[]>> = {
  memory: async () => memoryScenarios,
  // Loaded on demand: a target's client library is imported only when it runs.
  rabbitmq: async () => (await import('./rabbitmq.js')).rabbitmqScenarios,
  mqtt: async () => (await import('./mqtt.js')).mqttScenarios,
  kafka: async () => (await import('./kafka.js')).kafkaScenarios,
  'stomp-rabbitmq': async () => (await import('./stomp.js')).stompScenarios('rabbitmq'),
  'stomp-activemq': async () => (await import('./stomp.js')).stompScenarios('activemq'),
  channels: async () => (await import('./tracing.js')).channelScenarios(),
  'otel-memory': async () => (await import('./tracing.js')).tracingScenarios(memoryScenarios),
  'otel-rabbitmq': async () =>
    (await import('./tracing.js')).tracingScenarios((await import('./rabbitmq.js')).rabbitmqScenarios),
  'otel-kafka': async () =>
    (await import('./tracing.js')).tracingScenarios((await import('./kafka.js')).kafkaScenarios),
  'otel-mqtt': async () =>
    (await import('./tracing.js')).tracingScenarios((await import('./mqtt.js')).mqttScenarios),
  'otel-stomp-rabbitmq': async () =>
    (await import('./tracing.js')).tracingScenarios((await import('./stomp.js')).stompScenarios('rabbitmq')),
  'otel-stomp-activemq': async () =>
    (await import('./tracing.js')).tracingScenarios((await import('./stomp.js')).stompScenarios('activemq')),
};

const BENCH_DIR = fileURLToPath(new URL('..', import.meta.url));
const DOCS_DIR = fileURLToPath(new URL('../../docs/', import.meta.url));

const args = process.argv.slice(2).filter((a) => a !== '--');
const flags = new Map<string, string>();
const wanted: string[] = [];
for (const arg of args) {
  if (!arg.startsWith('--')) wanted.push(arg);
  else {
    const eq = arg.indexOf('=');
    flags.set(eq < 0 ? arg.slice(2) : arg.slice(2, eq), eq < 0 ? '' : arg.slice(eq + 1));
  }
}
const KNOWN_FLAGS = ['depths', 'rounds', 'quick', 'out', 'profile', 'profile-depth', 'chart', 'summarize'];
const unknownFlags = [...flags.keys()].filter((f) => !KNOWN_FLAGS.includes(f));
if (unknownFlags.length > 0)
  fail(`unknown flag(s): --${unknownFlags.join(', --')}; known: --${KNOWN_FLAGS.join(', --')}`);

function setting(flag: string, env: string): string | undefined {
  return flags.get(flag) ?? process.env[env];
}

function fail(message: string): never {
  console.error(`bench: ${message}`);
  process.exit(2);
}

function positiveInts(text: string, what: string): number[] {
  const values = text.split(',').map((v) => Number(v.trim()));
  if (values.length === 0 || values.some((v) => !Number.isInteger(v) || v < 1))
    fail(`${what} must be positive integers separated by commas, got "${text}"`);
  return values;
}

if (flags.has('summarize')) {
  const { selfTimes, summaryText } = await import('./profile.js');
  const file = flags.get('summarize') || fail('--summarize needs a file: --summarize=FILE.cpuprofile');
  console.log(summaryText(file, selfTimes(JSON.parse(readFileSync(file, 'utf8')))));
  process.exit(0);
}

if (flags.has('chart')) {
  const { renderCharts } = await import('./chart.js');
  const file = flags.get('chart') || wanted[0] || `${BENCH_DIR}results/latest.json`;
  for (const path of await renderCharts(readRun(file), DOCS_DIR)) console.log(`wrote ${path}`);
  process.exit(0);
}

const targets = wanted.length > 0 ? wanted : ['memory'];
const unknown = targets.filter((t) => TARGETS[t] === undefined);
if (unknown.length > 0)
  fail(`unknown bench target(s): ${unknown.join(', ')}; known: ${Object.keys(TARGETS).join(', ')}`);

const quickSetting = setting('quick', 'BENCH_QUICK');
const quick = quickSetting !== undefined && quickSetting !== '0' && quickSetting !== 'false';
const depthsSetting = setting('depths', 'BENCH_DEPTHS');
const depths = depthsSetting === undefined ? [...DEFAULT_DEPTHS] : positiveInts(depthsSetting, 'depths');
const roundsSetting = setting('rounds', 'BENCH_ROUNDS');
const rounds = roundsSetting === undefined ? (quick ? 1 : 3) : positiveInts(roundsSetting, 'rounds')[0]!;
const scale = quick ? 0.25 : 1;

const profileSetting = setting('profile', 'BENCH_PROFILE');
if (profileSetting !== undefined && profileSetting !== '0') {
  const { profilePair } = await import('./profile.js');
  const pattern = profileSetting === '' || profileSetting === '1' ? '' : profileSetting;
  const scenarios = (await Promise.all(targets.map((t) => TARGETS[t]!()))).flat();
  const scenario = scenarios.find((s) => s.name.includes(pattern));
  if (scenario === undefined) fail(`no pair of ${targets.join(', ')} has "${pattern}" in its name`);
  const depthText = setting('profile-depth', 'BENCH_PROFILE_DEPTH');
  const depth = depthText === undefined ? Math.max(...depths) : positiveInts(depthText, 'profile depth')[0]!;
  const dir = `${BENCH_DIR}results/profiles`;
  mkdirSync(dir, { recursive: true });
  const kind = process.env.BENCH_PROFILE_KIND === 'alloc' ? 'alloc' : 'cpu';
  console.log(await profilePair(scenario, depth, countAt(scenario, depth, scale), dir, kind));
  console.log(`profiles in ${dir}`);
  process.exit(0);
}

const startedAt = new Date().toISOString();
const machine = machineAtStart();
console.log(
  `omnibus bench: ${MESSAGE_BYTES}-byte messages, depths ${depths.join(', ')}, ${rounds} alternating rounds per pair and depth${quick ? ' (quick)' : ''}, median shown; load ${machine.loadStart.join(' ')}`,
);
const results: Result[] = [];
const pairs: PairResult[] = [];
/** Only the pairs whose name has this text (`BENCH_PAIR`), e.g. `BENCH_PAIR=sendBatch`. */
const pairFilter = process.env.BENCH_PAIR || undefined;
for (const target of targets) {
  for (const scenario of await TARGETS[target]!()) {
    if (pairFilter !== undefined && !scenario.name.includes(pairFilter)) continue;
    for (const depth of depths) {
      const result = await compare(scenario, rounds, depth, countAt(scenario, depth, scale));
      results.push(result);
      pairs.push(pairResult(target, rounds, result));
      console.log(`  done: ${scenario.name}, ${depth} in flight`);
    }
  }
}
console.log(table(results));
const run: BenchRun = {
  version: 1,
  startedAt,
  finishedAt: new Date().toISOString(),
  machine: { ...machine, loadEnd: loadNow() },
  settings: { targets, depths, rounds, quick, messageBytes: MESSAGE_BYTES },
  results: pairs,
};
const out = setting('out', 'BENCH_OUT') || `${BENCH_DIR}results`;
console.log(`results: ${writeRun(out, run)} (and latest.json); charts: pnpm bench:chart`);
