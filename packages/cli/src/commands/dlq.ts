/** `omnibus dlq count | peek | redrive`: the dead letters of a queue, a durable subscription or a log group. */
import type { DeadLetter, DeadLetterSource, RedriveOptions, RedriveResult } from '@omnibus/core';
import type { Command } from 'commander';
import { type ConnectionFlags, connectionOptions } from '../broker.js';
import { CliError, describeFailure, EXIT, exitCodeOf } from '../exit.js';
import { parsePositiveInt } from '../options.js';
import { bodyAndHeaders, colourEnabled, decodeBody, type Paint, Progress, painter } from '../output.js';
import { withBus } from './admin.js';

interface SourceFlags extends ConnectionFlags {
  readonly subscription?: string;
  readonly group?: string;
  readonly topic?: boolean;
  readonly log?: boolean;
  readonly dlq?: boolean;
  readonly deadLetter?: string;
  readonly json?: boolean;
}

interface PeekFlags extends SourceFlags {
  readonly count: number;
  readonly pretty?: boolean;
}

interface RedriveFlags extends SourceFlags {
  readonly limit?: number;
  readonly to?: string;
  readonly id?: string[];
  readonly reason?: string;
  readonly idle?: number;
}

const SOURCE_HELP = `
Whose dead letters (each has its own dead-letter queue):
  <name>                              the queue <name>            -> <name>.dlq
  <name> --subscription <sub>         a topic's durable subscription -> <name>.<sub>.dlq
  <name> --topic                      a topic's plain subscriptions  -> <name>.dlq
  <name> --group <group>              a log read by a group       -> <name>.<group>.dlq
  <name> --log                        a log read without a group  -> <name>.dlq
  <name> --dlq                        <name> is the dead-letter queue itself
  --dead-letter <queue>               the consumer was given a dead-letter queue of its own`;

function withSource(command: Command): Command {
  return connectionOptions(
    command
      .argument('<name>', 'the queue, topic or log whose dead letters these are (see --dlq)')
      .option('-s, --subscription <name>', "a topic's durable subscription")
      .option('-g, --group <group>', 'a log consumer group')
      .option('--topic', "<name> is a topic: its plain subscriptions' dead letters")
      .option('--log', '<name> is a log read without a group')
      .option('--dlq', '<name> is the dead-letter queue itself, e.g. orders.dlq')
      .option('--dead-letter <queue>', 'the dead-letter queue the consumer was given, if not the default'),
  );
}

/** The source the flags name; two that contradict each other are a usage error. */
export function sourceOf(name: string, flags: SourceFlags): DeadLetterSource {
  const kinds = [
    flags.subscription !== undefined || flags.topic === true ? 'topic' : undefined,
    flags.group !== undefined || flags.log === true ? 'log' : undefined,
    flags.dlq === true ? 'dlq' : undefined,
  ].filter((k) => k !== undefined);
  if (kinds.length > 1)
    throw new CliError(
      `name one kind of source: --subscription/--topic, --group/--log or --dlq, not ${kinds.join(' and ')}`,
      EXIT.usage,
    );
  const deadLetter = flags.deadLetter === undefined ? {} : { deadLetter: flags.deadLetter };
  switch (kinds[0]) {
    case 'dlq':
      if (flags.deadLetter !== undefined)
        throw new CliError(
          '--dlq names the dead-letter queue already; --dead-letter is for a source',
          EXIT.usage,
        );
      return name;
    case 'topic':
      return {
        topic: name,
        ...(flags.subscription === undefined ? {} : { subscription: flags.subscription }),
        ...deadLetter,
      };
    case 'log':
      return { log: name, ...(flags.group === undefined ? {} : { group: flags.group }), ...deadLetter };
    default:
      return { queue: name, ...deadLetter };
  }
}

export function dlqCommand(program: Command): void {
  const dlq = program
    .command('dlq')
    .summary('count, peek and redrive dead letters')
    .description(
      "The dead letters of a queue, a durable subscription or a log group: how many (depth capability), the first few without consuming them (browse), and sending them back where they failed (redrive; a durable subscription's to it alone: redriveSubscription). Where the broker lacks one, exit 3 names it.",
    )
    .addHelpText(
      'after',
      `${SOURCE_HELP}

Examples:
  $ omnibus dlq count orders
  $ omnibus dlq peek orders -n 5 --pretty
  $ omnibus dlq redrive orders --reason timeout --limit 100
  $ omnibus dlq redrive shop --subscription billing
  $ omnibus dlq redrive audit --group indexer --to audit-retries`,
    );

  withSource(dlq.command('count').description('Prints how many dead letters wait (depth capability).'))
    .option('--json', 'print {"queue","count"}')
    .addHelpText(
      'after',
      `${SOURCE_HELP}

Examples:
  $ omnibus dlq count orders
  $ omnibus dlq count shop --subscription billing --json`,
    )
    .action(async (name: string, flags: SourceFlags) => {
      const source = sourceOf(name, flags);
      await withBus(flags, async (bus) => {
        const letters = bus.deadLetters(source);
        const count = await letters.count();
        process.stdout.write(
          `${flags.json === true ? JSON.stringify({ queue: letters.queue, count }) : count}\n`,
        );
      });
    });

  withSource(
    dlq
      .command('peek')
      .description(
        'Prints the first dead letters without consuming them (browse capability): id, where and why it failed, attempts, when, the payload and its headers. JSON lines on a pipe, a readable layout on a terminal.',
      ),
  )
    .option('-n, --count <n>', 'how many', parsePositiveInt, 10)
    .option('--json', 'JSON lines, even on a terminal')
    .option('--pretty', 'the readable layout, even on a pipe')
    .addHelpText(
      'after',
      `${SOURCE_HELP}

Examples:
  $ omnibus dlq peek orders
  $ omnibus dlq peek orders -n 100 | jq -r .reason | sort | uniq -c`,
    )
    .action(async (name: string, flags: PeekFlags) => {
      const source = sourceOf(name, flags);
      if (flags.json === true && flags.pretty === true)
        throw new CliError('--json or --pretty, not both', EXIT.usage);
      const pretty = flags.pretty === true || (flags.json !== true && process.stdout.isTTY === true);
      const paint = painter(pretty && colourEnabled(process.stdout));
      await withBus(flags, async (bus) => {
        const letters = await bus.deadLetters(source).peek(flags.count);
        for (const letter of letters) {
          const record = letterRecord(letter);
          process.stdout.write(`${pretty ? prettyLetter(record, paint) : JSON.stringify(record)}\n`);
        }
      });
    });

  withSource(
    dlq
      .command('redrive')
      .description(
        "Sends dead letters back where they failed: a queue's to the queue (redrive capability), a durable subscription's to that subscription only (redriveSubscription; where the broker lacks it, --to <queue> moves them); a log's and a plain subscription's need --to <queue>. Each leaves the dead letters only once its copy is confirmed. A snapshot: what was there when it started, each once; one that fails again waits for the next run. --id and --reason choose which (the others stay, at the back). Prints a summary (--json: the counts); a progress bar on a terminal.",
      ),
  )
    .option('-l, --limit <n>', 'move at most this many', parsePositiveInt)
    .option('--to <queue>', 'send them to this queue instead of where they failed')
    .option('--id <id>', 'only the dead letter with this id (repeatable)', collect)
    .option('--reason <regex>', 'only dead letters whose reason matches (case-insensitive)')
    .option('--idle <ms>', 'end the run when no dead letter arrives for this long', parsePositiveInt, 2000)
    .option('--json', 'print the result as JSON')
    .addHelpText(
      'after',
      `${SOURCE_HELP}

Examples:
  $ omnibus dlq redrive orders
  $ omnibus dlq redrive orders --id 6ee836a0-85c6-48e7-980c-68b514911698
  $ omnibus dlq redrive orders --reason 'timeout|ECONNRESET' --limit 500
  $ omnibus dlq redrive shop --subscription billing
  $ omnibus dlq redrive shop --subscription billing --to billing-retries
  $ omnibus dlq redrive audit --group indexer --to audit-retries`,
    )
    .action(async (name: string, flags: RedriveFlags) => {
      const source = sourceOf(name, flags);
      const filter = filterOf(flags);
      const result = await withBus(flags, async (bus) => {
        const letters = bus.deadLetters(source);
        // The count first, for the bar (redrive counts again: it takes the snapshot).
        const total = bus.capabilities.depth === 'none' ? 0 : await letters.count();
        const progress = new Progress(
          flags.limit === undefined ? total : Math.min(total, flags.limit),
          `redrive ${letters.queue}`,
        );
        let handled = 0;
        const options: RedriveOptions = {
          idleMs: flags.idle ?? 2000,
          ...(flags.limit === undefined ? {} : { limit: flags.limit }),
          ...(flags.to === undefined ? {} : { to: flags.to }),
          ...(filter === undefined ? {} : { filter }),
          onProgress: (p) => {
            const now = p.moved + p.skipped + p.failed;
            progress.tick(now - handled);
            handled = now;
          },
        };
        try {
          return { queue: letters.queue, result: await letters.redrive(options) };
        } finally {
          progress.finish();
        }
      });
      printRedrive(result.queue, result.result, flags);
      if (result.result.error !== undefined) {
        throw new CliError(
          `redrive stopped: ${describeFailure(result.result.error, flags.verbose === true)}`,
          exitCodeOf(result.result.error) === EXIT.ok ? EXIT.failure : exitCodeOf(result.result.error),
        );
      }
    });
}

function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}

function filterOf(flags: RedriveFlags): ((letter: DeadLetter) => boolean) | undefined {
  const ids = flags.id === undefined ? undefined : new Set(flags.id);
  let reason: RegExp | undefined;
  if (flags.reason !== undefined) {
    try {
      reason = new RegExp(flags.reason, 'i');
    } catch (error) {
      throw new CliError(`--reason is not a regular expression: ${(error as Error).message}`, EXIT.usage);
    }
  }
  if (ids === undefined && reason === undefined) return undefined;
  return (letter) =>
    (ids === undefined || ids.has(letter.id)) && (reason === undefined || reason.test(letter.reason ?? ''));
}

function printRedrive(queue: string, result: RedriveResult, flags: RedriveFlags): void {
  if (flags.json === true) {
    const { error, ...counts } = result;
    process.stdout.write(
      `${JSON.stringify({ queue, ...counts, ...(error === undefined ? {} : { error: describeFailure(error, false) }) })}\n`,
    );
    return;
  }
  const of = result.total === undefined ? '' : ` of ${result.total}`;
  process.stdout.write(
    `redrive ${queue}${of}: moved ${result.moved}, skipped ${result.skipped}, failed ${result.failed} (run ${result.runId})\n`,
  );
}

/** A dead letter as `peek` prints it: JSON-ready, the payload read by its content type. */
export interface LetterRecord {
  readonly id: string;
  readonly origin?: DeadLetter['origin'];
  readonly reason?: string;
  readonly attempts?: number;
  readonly firstFailure?: string;
  readonly failedAt?: string;
  readonly timestamp: string;
  readonly redrives: number;
  readonly key?: string;
  readonly subject?: string;
  readonly priority?: number;
  readonly contentType?: string;
  readonly headers: Readonly<Record<string, string>>;
  readonly payload: unknown;
  readonly encoding?: 'base64';
}

function letterRecord(letter: DeadLetter): LetterRecord {
  const { payload, encoding } = decodeBody(letter.contentType ?? '', letter.body);
  const optional = <K extends string, V>(key: K, value: V | undefined) =>
    value === undefined ? {} : ({ [key]: value } as Record<K, V>);
  return {
    id: letter.id,
    ...optional('origin', letter.origin),
    ...optional('reason', letter.reason),
    ...optional('attempts', letter.attempts),
    ...optional('firstFailure', letter.firstFailure?.toISOString()),
    ...optional('failedAt', letter.failedAt?.toISOString()),
    timestamp: letter.timestamp.toISOString(),
    redrives: letter.redrives,
    ...optional('key', letter.key),
    ...optional('subject', letter.subject),
    ...optional('priority', letter.priority),
    ...optional('contentType', letter.contentType),
    headers: letter.headers,
    payload,
    ...optional('encoding', encoding),
  };
}

function prettyLetter(record: LetterRecord, paint: Paint): string {
  const origin = record.origin;
  const where =
    origin === undefined
      ? '(origin unknown)'
      : `${origin.kind} ${origin.name}${origin.subscription === undefined ? '' : ` subscription ${origin.subscription}`}${origin.group === undefined ? '' : ` group ${origin.group}`}`;
  const meta = [
    `id=${record.id}`,
    record.attempts === undefined ? '' : `attempts=${record.attempts}`,
    record.redrives > 0 ? `redrives=${record.redrives}` : '',
    record.key === undefined ? '' : `key=${record.key}`,
    record.subject === undefined ? '' : `subject=${record.subject}`,
  ].filter((s) => s !== '');
  const lines = [
    `${paint('cyan', paint('bold', where))}  ${paint('dim', record.failedAt ?? record.timestamp)}  ${paint('yellow', meta.join(' '))}`,
    `  ${paint('red', `reason: ${record.reason ?? '(none)'}`)}`,
  ];
  return [...lines, ...bodyAndHeaders(record, paint)].join('\n');
}
