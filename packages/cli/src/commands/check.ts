import { randomBytes } from 'node:crypto';
import {
  type Bus,
  FEATURE_NEEDS,
  FEATURES,
  type Feature,
  missingCapabilities,
  type Requirements,
  redactUrl,
  type Support,
} from '@omnibus/core';
import type { Command } from 'commander';
import { brokerUrl, type ConnectionFlags, connectBus, connectionOptions } from '../broker.js';
import { CliError, EXIT } from '../exit.js';
import { parsePositiveInt } from '../options.js';
import { colourEnabled, type Paint, painter } from '../output.js';
import { type Probe, type ProbeContext, ProbeFailure, probesFor, proveDenied } from '../probes.js';
import { parseRequires } from '../requires.js';

type Status = 'holds' | 'fails' | 'denied' | 'missing' | 'unchecked';

interface FeatureResult {
  readonly feature: Feature;
  readonly support: Support;
  readonly status: Status;
  /** What was proven, or why it failed, or why it was not checked. */
  readonly detail: string;
}

interface CheckFlags extends ConnectionFlags {
  readonly json?: boolean;
  readonly requires?: Partial<Record<Feature, Support>>;
  readonly timeout: number;
}

export function checkCommand(program: Command): void {
  connectionOptions(
    program
      .command('check')
      .summary("prove a live broker's capabilities")
      .description(
        'Runs a short, safe subset of the contract suite on the broker, on temporary destinations named omnibus-check-<run>-*: a round trip on a queue, fan-out and routing on a topic, append and replay on a log, priority order, delay, dead-lettering, durable subscriptions and consumer groups — each only where the broker claims it — and proves that every capability it marks none throws. Every message it sends is consumed again; the empty destinations stay on the broker until you delete them (it prints their names).',
      )
      .argument('[url]', 'broker URL (default: --url or $BROKER_URL)')
      .option(
        '-r, --requires <capabilities>',
        "only what your application requires, as in connect(): 'queue,replay' or 'replay=native,delay'",
        parseRequires,
      )
      .option('--timeout <ms>', 'deadline for each probe', parsePositiveInt, 15_000)
      .option('--json', 'print the results as JSON'),
  )
    .addHelpText(
      'after',
      `
Exit codes: 0 every claimed capability holds (and --requires is met), 1 a claimed capability
does not hold, 3 the broker lacks something --requires names.

Examples:
  $ omnibus check amqp://guest:guest@localhost:5672
  $ omnibus check --url stomp://admin:admin@activemq:61614 --requires queue,priority,delay
  $ omnibus check 'kafka://localhost:9092' --json | jq '.results[] | select(.status == "fails")'`,
    )
    .action(async (positional: string | undefined, flags: CheckFlags) => {
      const url = brokerUrl(flags, positional, { memoryAllowed: true });
      const bus = await connectBus(url, flags);
      const report = await runCheck(bus, url, flags);
      const paint = painter(colourEnabled(process.stdout));
      process.stdout.write(
        flags.json === true ? `${JSON.stringify(report, null, 2)}\n` : `${printReport(report, paint)}\n`,
      );
      if (report.missing.length > 0)
        throw new CliError(
          `this broker lacks what --requires names: ${report.missing.join(', ')}`,
          EXIT.unsupported,
        );
      if (!report.ok) throw new CliError('a capability the broker claims does not hold', EXIT.failure);
    });
}

interface Report {
  readonly url: string;
  readonly adapter: string;
  readonly ok: boolean;
  readonly missing: readonly string[];
  readonly results: readonly FeatureResult[];
  /** Destinations and subscriptions the check created, emptied, and could not delete. */
  readonly leftOnBroker: readonly string[];
  readonly ms: number;
}

async function runCheck(bus: Bus, url: string, flags: CheckFlags): Promise<Report> {
  const started = Date.now();
  const capabilities = bus.capabilities;
  const run = `omnibus-check-${randomBytes(3).toString('hex')}`;
  const left = new Set<string>();
  const extra: Bus[] = [];
  const context: ProbeContext = {
    bus,
    capabilities,
    timeoutMs: flags.timeout,
    name(suffix, kind) {
      const name = `${run}-${suffix}`;
      if (kind !== undefined) left.add(`${kind} ${name}`);
      return name;
    },
    async connect() {
      const another = await connectBus(url, flags);
      extra.push(another);
      return another;
    },
  };
  const scope = flags.requires === undefined ? undefined : new Set(Object.keys(flags.requires) as Feature[]);
  const lacking =
    flags.requires === undefined ? [] : missingCapabilities(capabilities, flags.requires as Requirements);
  const missing = lacking.map((m) => `${m.feature} (needs ${m.required}, has ${m.actual})`);

  // Probes run side by side: each has its own destinations, and the slow ones (Kafka group joins) overlap.
  const probes = probesFor(scope, capabilities);
  const outcomes = await Promise.all(probes.map((probe) => runProbe(probe, context)));
  const denied = await Promise.all(
    FEATURES.filter((f) => capabilities[f] === 'none' && (scope === undefined || scope.has(f))).map(
      async (feature) => {
        const need = FEATURE_NEEDS[feature];
        if (need !== undefined && capabilities[need] === 'none')
          return { feature, skipped: `${need} is none` };
        try {
          await proveDenied(feature, context);
          return { feature };
        } catch (error) {
          return { feature, error: describe(error) };
        }
      },
    ),
  );
  for (const b of extra) await b.close();
  await bus.close();

  const results: FeatureResult[] = [];
  for (const feature of FEATURES) {
    if (scope !== undefined && !scope.has(feature)) continue;
    const support = capabilities[feature];
    const short = lacking.find((m) => m.feature === feature);
    if (short !== undefined) {
      const detail = `required ${short.required}, the broker has ${support}`;
      results.push({ feature, support, status: 'missing', detail });
      continue;
    }
    if (support === 'none') {
      const d = denied.find((x) => x.feature === feature);
      const status: Status =
        d?.error !== undefined ? 'fails' : d?.skipped !== undefined ? 'unchecked' : 'denied';
      const detail =
        d?.error ??
        (d?.skipped !== undefined
          ? `not checked: ${d.skipped}`
          : 'using it throws UnsupportedCapabilityError');
      results.push({
        feature,
        support,
        status,
        detail,
      });
      continue;
    }
    const mine = outcomes.filter((o) => o.probe.features.includes(feature));
    if (mine.length === 0) {
      results.push({ feature, support, status: 'unchecked', detail: 'no probe for it yet' });
      continue;
    }
    const failed = mine.find((o) => o.error !== undefined);
    // A feature's own probe is the one that names it last (the others use it along the way).
    const own = mine.filter((o) => o.probe.features.at(-1) === feature);
    results.push({
      feature,
      support,
      status: failed === undefined ? 'holds' : 'fails',
      detail:
        failed === undefined
          ? (own.length > 0 ? own : mine).map((o) => `${o.probe.title} (${o.ms} ms)`).join('; ')
          : `${failed.probe.title}: ${failed.error}`,
    });
  }
  return {
    url: redactUrl(url),
    adapter: bus.adapter,
    ok: results.every((r) => r.status !== 'fails'),
    missing,
    results,
    leftOnBroker: bus.adapter === 'memory' ? [] : [...left].sort(),
    ms: Date.now() - started,
  };
}

async function runProbe(
  probe: Probe,
  context: ProbeContext,
): Promise<{ probe: Probe; ms: number; error?: string }> {
  const started = Date.now();
  try {
    await probe.run(context);
    return { probe, ms: Date.now() - started };
  } catch (error) {
    return { probe, ms: Date.now() - started, error: describe(error) };
  }
}

function describe(error: unknown): string {
  if (error instanceof ProbeFailure) return error.message;
  const text = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
  return redactUrl(text);
}

const MARK: Record<Status, (paint: Paint) => string> = {
  holds: (p) => p('green', '✓'),
  denied: (p) => p('green', '✓'),
  fails: (p) => p('red', '✗'),
  missing: (p) => p('red', '✗'),
  unchecked: (p) => p('dim', '-'),
};

function printReport(report: Report, paint: Paint): string {
  const lines = [`${paint('bold', report.url)} ${paint('dim', `(${report.adapter})`)}`];
  for (const r of report.results) {
    const support = r.support.padEnd(9);
    const detail =
      r.status === 'fails' || r.status === 'missing' ? paint('red', r.detail) : paint('dim', r.detail);
    lines.push(`  ${MARK[r.status](paint)} ${r.feature.padEnd(21)} ${support} ${detail}`);
  }
  const failing = report.results.filter((r) => r.status === 'fails').map((r) => r.feature);
  lines.push('');
  if (report.missing.length > 0)
    lines.push(paint('red', `missing for --requires: ${report.missing.join(', ')}`));
  lines.push(
    failing.length === 0
      ? paint('green', `every capability checked holds (${(report.ms / 1000).toFixed(1)} s)`)
      : paint('red', `does not hold: ${failing.join(', ')}`),
  );
  if (report.leftOnBroker.length > 0) {
    lines.push(
      paint(
        'dim',
        `left on the broker, empty (Omnibus cannot delete destinations yet): ${report.leftOnBroker.join(', ')}`,
      ),
    );
  }
  return lines.join('\n');
}
