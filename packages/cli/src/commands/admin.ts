/** Admin commands: a queue's depth and purge, a log group's lag and reset, deleting a durable subscription. */
import { createInterface } from 'node:readline/promises';
import type { Bus, GroupLag, ResetFrom } from '@omnibus/core';
import { type Command, InvalidArgumentError } from 'commander';
import { brokerUrl, type ConnectionFlags, connectBus, connectionOptions } from '../broker.js';
import { CliError, EXIT } from '../exit.js';
import { colourEnabled, painter } from '../output.js';

interface JsonFlags extends ConnectionFlags {
  readonly json?: boolean;
}

/**
 * Admin commands take memory:// too: they lose nothing there, they see the empty broker of their
 * own process (it answers 0 and nothing), as `caps` and `check` do.
 */
export async function withBus<T>(flags: ConnectionFlags, work: (bus: Bus) => Promise<T>): Promise<T> {
  const bus = await connectBus(brokerUrl(flags, undefined, { memoryAllowed: true }), flags);
  try {
    return await work(bus);
  } finally {
    await bus.close();
  }
}

/**
 * A destructive command goes ahead with --yes, or after "y" on a terminal; without a terminal and
 * without --yes it refuses (exit 2), so a script never deletes by accident.
 */
export async function confirm(question: string, yes: boolean | undefined): Promise<void> {
  if (yes === true) return;
  if (process.stdin.isTTY !== true || process.stderr.isTTY !== true) {
    throw new CliError(`${question}: pass --yes to confirm (no terminal to ask on)`, EXIT.usage);
  }
  const prompt = createInterface({ input: process.stdin, output: process.stderr });
  try {
    const answer = await prompt.question(`${question}? [y/N] `);
    if (!/^y(es)?$/i.test(answer.trim())) throw new CliError('not confirmed: nothing done', EXIT.failure);
  } finally {
    prompt.close();
  }
}

export function parseResetTo(value: string): ResetFrom {
  if (value === 'earliest' || value === 'latest') return value;
  const time = Date.parse(value);
  if (Number.isNaN(time) || !/^\d{4}-\d{2}-\d{2}/.test(value))
    throw new InvalidArgumentError('expected earliest, latest or an ISO time (2025-06-01T12:00:00Z).');
  return { timestamp: new Date(time) };
}

function print(flags: JsonFlags, json: unknown, text: string): void {
  process.stdout.write(`${flags.json === true ? JSON.stringify(json) : text}\n`);
}

export function adminCommands(program: Command): void {
  connectionOptions(
    program
      .command('depth')
      .summary("a queue's depth")
      .description(
        'Prints how many messages wait in a queue, ready for delivery now (not those a consumer holds unsettled, not delayed ones not yet due). Needs the depth capability (exit 3 where the broker lacks it).',
      )
      .argument('<queue>', "the queue's name")
      .option('--json', 'print {"queue","depth"}'),
  )
    .addHelpText(
      'after',
      `
Examples:
  $ omnibus depth orders
  $ omnibus depth orders.dlq --json`,
    )
    .action(async (queue: string, flags: JsonFlags) => {
      await withBus(flags, async (bus) => {
        const depth = await bus.queue(queue).depth();
        print(flags, { queue, depth }, String(depth));
      });
    });

  connectionOptions(
    program
      .command('purge')
      .summary('remove every message waiting in a queue')
      .description(
        'Removes every message of a queue that is not out with a consumer, and prints how many (where the broker says). It asks first on a terminal; elsewhere it needs --yes. Needs the purge capability (exit 3 where the broker lacks it).',
      )
      .argument('<queue>', "the queue's name")
      .option('-y, --yes', 'do not ask')
      .option('--json', 'print {"queue","purged"}'),
  )
    .addHelpText(
      'after',
      `
Examples:
  $ omnibus purge orders               # asks first
  $ omnibus purge orders.dlq --yes`,
    )
    .action(async (queue: string, flags: JsonFlags & { yes?: boolean }) => {
      await withBus(flags, async (bus) => {
        const handle = bus.queue(queue);
        // A broker without the capability refuses before anything is asked.
        if (bus.capabilities.purge === 'none') await handle.purge();
        const waiting = bus.capabilities.depth === 'none' ? undefined : await handle.depth();
        await confirm(
          `purge queue ${queue}${waiting === undefined ? '' : ` (${waiting} message(s) waiting)`}`,
          flags.yes,
        );
        const purged = await handle.purge();
        print(
          flags,
          { queue, purged: purged ?? null },
          purged === undefined ? `purged ${queue}` : `purged ${purged} message(s) from ${queue}`,
        );
      });
    });

  connectionOptions(
    program
      .command('lag')
      .summary("a log group's lag")
      .description(
        'Prints how far a consumer group is behind the end of a log: the total, then per partition the committed offset (the next the group reads; "-" where it never committed), the end and the lag. Needs the lag capability (exit 3 where the broker lacks it).',
      )
      .argument('<log>', "the log's name")
      .requiredOption('-g, --group <group>', 'the consumer group')
      .option('--json', 'print {"log","group","total","partitions"}'),
  )
    .addHelpText(
      'after',
      `
Examples:
  $ omnibus lag audit --group indexer
  $ omnibus lag audit --group indexer --json | jq .total`,
    )
    .action(async (log: string, flags: JsonFlags & { group: string }) => {
      await withBus(flags, async (bus) => {
        const lag = await bus.log(log).lag(flags.group);
        print(flags, { log, group: flags.group, ...lag }, lagTable(log, flags.group, lag));
      });
    });

  connectionOptions(
    program
      .command('reset')
      .summary('reset a log group to earliest, latest or a time')
      .description(
        "Moves a consumer group's committed position: to the start of the log, to its end, or to the first message at or after a time. The group's next reader starts there. Refused (exit 2) while a reader of the group is attached. Needs the resetGroup capability (exit 3 where the broker lacks it).",
      )
      .argument('<log>', "the log's name")
      .requiredOption('-g, --group <group>', 'the consumer group')
      .requiredOption('--to <where>', 'earliest, latest or an ISO time', parseResetTo)
      .option('--json', 'print {"log","group","to"}'),
  )
    .addHelpText(
      'after',
      `
Examples:
  $ omnibus reset audit --group indexer --to earliest     # read everything again
  $ omnibus reset audit --group indexer --to latest       # skip the backlog
  $ omnibus reset audit --group indexer --to 2025-06-01T00:00:00Z`,
    )
    .action(async (log: string, flags: JsonFlags & { group: string; to: ResetFrom }) => {
      await withBus(flags, async (bus) => {
        await bus.log(log).resetGroup(flags.group, flags.to);
        const to = typeof flags.to === 'string' ? flags.to : new Date(flags.to.timestamp).toISOString();
        print(flags, { log, group: flags.group, to }, `group ${flags.group} of log ${log} reset to ${to}`);
      });
    });

  connectionOptions(
    program
      .command('delete-subscription')
      .summary("delete a topic's durable subscription")
      .description(
        'Deletes a durable subscription of a topic and every message it holds. An abandoned durable subscription keeps everything published to its topic: delete the ones nobody reads. Refused (exit 2) while a subscriber of it is attached. It asks first on a terminal; elsewhere it needs --yes. Exit 0 also when there was no such subscription (it says so). Needs the deleteSubscription capability (exit 3 where the broker lacks it).',
      )
      .argument('<topic>', "the topic's name")
      .argument('<name>', "the durable subscription's name")
      .option('-y, --yes', 'do not ask')
      .option('--json', 'print {"topic","subscription","deleted"}'),
  )
    .addHelpText(
      'after',
      `
Examples:
  $ omnibus delete-subscription shop billing-old
  $ omnibus delete-subscription shop audit-tail --yes`,
    )
    .action(async (topic: string, name: string, flags: JsonFlags & { yes?: boolean }) => {
      await withBus(flags, async (bus) => {
        const handle = bus.topic(topic);
        if (bus.capabilities.deleteSubscription === 'none') await handle.deleteSubscription(name);
        await confirm(`delete durable subscription ${name} of topic ${topic} and what it holds`, flags.yes);
        const deleted = await handle.deleteSubscription(name);
        print(
          flags,
          { topic, subscription: name, deleted },
          deleted
            ? `deleted durable subscription ${name} of topic ${topic}`
            : `no durable subscription ${name} on topic ${topic}: nothing to delete`,
        );
      });
    });
}

function lagTable(log: string, group: string, lag: GroupLag): string {
  const paint = painter(colourEnabled(process.stdout));
  const rows = lag.partitions.map(
    (p) =>
      `  ${String(p.partition).padEnd(10)}${String(p.committed ?? '-').padEnd(12)}${String(p.end).padEnd(12)}${p.lag}`,
  );
  return [
    `${paint('bold', `${log} group ${group}`)}: ${lag.total} behind`,
    paint('dim', `  ${'partition'.padEnd(10)}${'committed'.padEnd(12)}${'end'.padEnd(12)}lag`),
    ...rows,
  ].join('\n');
}
