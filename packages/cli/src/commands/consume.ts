import type { Bus, Consumer, Handler, Message, ReadFrom } from '@omnibus/core';
import { type Command, InvalidArgumentError } from 'commander';
import { brokerUrl, type ConnectionFlags, connectBus, connectionOptions } from '../broker.js';
import { CliError, EXIT } from '../exit.js';
import { parsePositiveInt } from '../options.js';
import { colourEnabled, messageRecord, painter, prettyMessage } from '../output.js';

type Kind = 'queue' | 'topic' | 'log';

interface ConsumeFlags extends ConnectionFlags {
  readonly count?: number;
  readonly timeout?: number;
  readonly from?: ReadFrom;
  readonly group?: string;
  readonly durable?: string;
  readonly maxPriority?: number;
  readonly json?: boolean;
  readonly pretty?: boolean;
  readonly quiet?: boolean;
}

const VERB: Record<Kind, string> = { queue: 'consume', topic: 'subscribe', log: 'read' };

const EXAMPLES: Record<Kind, string> = {
  queue: `
Examples:
  $ omnibus consume orders --count 1                  # take one message off the queue, ack it, exit
  $ omnibus consume orders --timeout 5000 | jq .payload
  $ omnibus consume orders.dlq --count 10 --json      # look at dead letters (this consumes them)`,
  topic: `
Examples:
  $ omnibus subscribe shop 'orders.*.created'         # tail a topic until Ctrl-C
  $ omnibus subscribe shop '#' --durable audit-tail   # keeps what is published while it is away
  $ omnibus subscribe shop 'orders.#' --count 5 --timeout 30000`,
  log: `
Examples:
  $ omnibus read audit                                # replay from the earliest message
  $ omnibus read audit --from latest                  # tail new entries
  $ omnibus read audit --from 2025-06-01T00:00:00Z --count 100
  $ omnibus read audit --from 0:42 --count 1          # partition 0, offset 42
  $ omnibus read audit --group auditor                # resume after the group's last commit`,
};

export function consumeCommands(program: Command): void {
  for (const kind of ['queue', 'topic', 'log'] as const) {
    const command = program
      .command(VERB[kind])
      .summary(
        kind === 'queue'
          ? 'take messages off a queue'
          : kind === 'topic'
            ? 'tail a topic, with a pattern'
            : 'read a log, from a position or a time',
      )
      .description(
        `${
          kind === 'queue'
            ? 'Consumes messages from a queue'
            : kind === 'topic'
              ? "Subscribes to a topic with a pattern ('*' one word, '#' any number; default '#')"
              : 'Reads a log'
        } and prints each one: JSON lines on a pipe, a readable layout on a terminal. Each message is acked once it is printed${kind === 'log' ? ' (with --group, that commits it)' : ''}; messages received but not printed go back to the broker. Runs until --count messages, --timeout, or Ctrl-C. Once attached, it says so on stderr ("ready: ...").`,
      )
      .argument(`<${kind}>`, `the ${kind}'s name`);
    if (kind === 'topic') command.argument('[pattern]', 'subject pattern', '#');
    command
      .option('-n, --count <n>', 'stop after this many messages', parsePositiveInt)
      .option(
        '-t, --timeout <ms>',
        'stop after this long (exit 5 if --count was not reached)',
        parsePositiveInt,
      );
    if (kind === 'log') {
      command
        .option(
          '--from <where>',
          'earliest, latest, an ISO time, or partition:offset (default: earliest)',
          parseFrom,
        )
        .option(
          '-g, --group <group>',
          'a consumer group: commits what it printed, resumes after its last commit',
        );
    }
    if (kind === 'topic')
      command.option('--durable <name>', 'a durable subscription: keeps what is published while away');
    if (kind === 'queue')
      command.option(
        '--max-priority <n>',
        "the queue's priority range, as your application declares it",
        parsePositiveInt,
      );
    command
      .option('--json', 'JSON lines, even on a terminal')
      .option('--pretty', 'the readable layout, even on a pipe')
      .option('-q, --quiet', 'no "ready" line on stderr');
    connectionOptions(command)
      .addHelpText('after', EXAMPLES[kind])
      .action(async (destination: string, ...rest: unknown[]) => {
        const pattern = kind === 'topic' ? (rest[0] as string) : undefined;
        const flags = (kind === 'topic' ? rest[1] : rest[0]) as ConsumeFlags;
        await consume(kind, destination, pattern, flags);
      });
  }
}

function parseFrom(value: string): ReadFrom {
  if (value === 'earliest' || value === 'latest') return value;
  const position = /^(\d+):(\d+)$/.exec(value);
  if (position !== null) return { position: { partition: Number(position[1]), offset: Number(position[2]) } };
  const time = Date.parse(value);
  if (Number.isNaN(time) || !/^\d{4}-\d{2}-\d{2}/.test(value))
    throw new InvalidArgumentError(
      'expected earliest, latest, an ISO time (2025-06-01T12:00:00Z) or partition:offset.',
    );
  return { timestamp: new Date(time) };
}

async function consume(kind: Kind, destination: string, pattern: string | undefined, flags: ConsumeFlags) {
  const url = brokerUrl(flags);
  if (flags.json === true && flags.pretty === true)
    throw new CliError('--json or --pretty, not both', EXIT.usage);
  const pretty = flags.pretty === true || (flags.json !== true && process.stdout.isTTY === true);
  const paint = painter(pretty && colourEnabled(process.stdout));
  const bus = await connectBus(url, flags);
  let printed = 0;
  let stopping = false;
  let reason: 'count' | 'timeout' | 'signal' | 'pipe' | undefined;
  let stop: () => void = () => undefined;
  const stopped = new Promise<void>((resolve) => {
    stop = resolve;
  });
  const end = (why: NonNullable<typeof reason>) => {
    if (stopping) return;
    stopping = true;
    reason = why;
    stop();
  };
  const onSignal = () => end('signal');
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  // `| head -1` closes the pipe: stop cleanly instead of crashing on EPIPE.
  const onPipeError = () => end('pipe');
  process.stdout.on('error', onPipeError);

  // One handler at a time, so what is printed is what is acked, in order.
  const handler: Handler<Uint8Array> = async (message: Message<Uint8Array>) => {
    if (stopping) {
      await message.requeue();
      return;
    }
    const record = messageRecord(message);
    const text = pretty ? prettyMessage(record, paint) : JSON.stringify(record);
    await new Promise<void>((resolve) => process.stdout.write(`${text}\n`, () => resolve()));
    if (stopping && reason === 'pipe') {
      await message.requeue();
      return;
    }
    await message.ack();
    printed++;
    if (flags.count !== undefined && printed >= flags.count) end('count');
  };

  let consumer: Consumer | undefined;
  const timer = flags.timeout === undefined ? undefined : setTimeout(() => end('timeout'), flags.timeout);
  try {
    const prefetch = Math.min(flags.count ?? 16, 16);
    consumer = await start(bus, kind, destination, pattern, flags, handler, prefetch);
    if (flags.quiet !== true) {
      const what = kind === 'topic' ? `topic ${destination} pattern ${pattern}` : `${kind} ${destination}`;
      process.stderr.write(
        `ready: ${VERB[kind]} ${what}${flags.count !== undefined ? `, ${flags.count} message(s)` : ''}\n`,
      );
    }
    await stopped;
  } finally {
    clearTimeout(timer);
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    await consumer?.close();
    await bus.close();
    process.stdout.off('error', onPipeError);
  }
  if (reason === 'timeout' && flags.count !== undefined && printed < flags.count)
    throw new CliError(
      `timed out after ${flags.timeout} ms with ${printed} of ${flags.count} messages`,
      EXIT.timeout,
    );
}

async function start(
  bus: Bus,
  kind: Kind,
  name: string,
  pattern: string | undefined,
  flags: ConsumeFlags,
  handler: Handler<Uint8Array>,
  prefetch: number,
): Promise<Consumer> {
  // Bytes in: a body is printed by its content type, never dead-lettered for failing to decode.
  const options = { concurrency: 1, prefetch };
  if (kind === 'queue') {
    const queue = bus.queue<Uint8Array>(name, {
      codec: 'bytes',
      ...(flags.maxPriority !== undefined ? { maxPriority: flags.maxPriority } : {}),
    });
    return queue.consume(handler, options);
  }
  if (kind === 'topic') {
    const topic = bus.topic<Uint8Array>(name, { codec: 'bytes' });
    return topic.subscribe(pattern ?? '#', handler, {
      ...options,
      ...(flags.durable !== undefined ? { durable: flags.durable } : {}),
    });
  }
  const log = bus.log<Uint8Array>(name, { codec: 'bytes' });
  return log.read(handler, {
    ...options,
    ...(flags.group !== undefined ? { group: flags.group } : {}),
    ...(flags.from !== undefined ? { from: flags.from } : {}),
  });
}
