import type { AppendResult, Bus, SendResult } from '@omnibus/core';
import { type Command, Option } from 'commander';
import { brokerUrl, type ConnectionFlags, connectBus, connectionOptions } from '../broker.js';
import { CliError, describeFailure, EXIT, exitCodeOf } from '../exit.js';
import { collectHeader, parseNonNegativeInt, parsePositiveInt } from '../options.js';
import { Progress } from '../output.js';
import { type Payload, type PayloadFlags, readPayloads } from '../payload.js';

type Kind = 'queue' | 'topic' | 'log';

interface SendFlags extends ConnectionFlags, PayloadFlags {
  readonly key?: string;
  readonly subject?: string;
  readonly header?: Record<string, string>;
  readonly priority?: number;
  readonly maxPriority?: number;
  readonly delay?: number;
  readonly id?: string;
  readonly json?: boolean;
  readonly concurrency: number;
}

const VERB: Record<Kind, string> = { queue: 'send', topic: 'publish', log: 'append' };
const DONE: Record<Kind, string> = { queue: 'sent', topic: 'published', log: 'appended' };

const EXAMPLES: Record<Kind, string> = {
  queue: `
Examples:
  $ omnibus send orders '{"id":"A-1","total":42}' --url amqp://guest:guest@localhost:5672
  $ omnibus send orders --file order.json --key A-1 --header tenant=acme
  $ omnibus send jobs '"urgent"' --priority 9 --max-priority 9
  $ omnibus send reminders '"later"' --delay 60000
  $ jq -c '.[]' orders.json | omnibus send orders --lines      # one message per line`,
  topic: `
Examples:
  $ omnibus publish shop '{"id":"A-1"}' --subject orders.eu.created
  $ echo 'stock is low' | omnibus publish alerts --subject stock.eu.low --codec text`,
  log: `
Examples:
  $ omnibus append audit '{"step":"paid"}' --key A-1            # prints the id and partition:offset
  $ cat events.jsonl | omnibus append audit --lines --key customer-1`,
};

export function sendCommands(program: Command): void {
  for (const kind of ['queue', 'topic', 'log'] as const) {
    const command = program
      .command(VERB[kind])
      .summary(
        `${kind === 'queue' ? 'send to a queue' : kind === 'topic' ? 'publish to a topic' : 'append to a log'}`,
      )
      .description(
        `${kind === 'queue' ? 'Sends a message to a queue' : kind === 'topic' ? 'Publishes a message to a topic' : 'Appends a message to a log'} and prints its id${kind === 'log' ? ' and position (partition:offset)' : ''} once the broker has confirmed it. The payload comes from the argument, --file, or stdin; with --lines, every line of the input is one message, sent in order (a progress bar shows on a terminal). A payload that parses as JSON is sent as JSON, anything else as text (--codec decides otherwise).`,
      )
      .argument(`<${kind}>`, `the ${kind}'s name`)
      .argument('[payload]', "the payload; '-' or none reads stdin");
    command
      .option('-f, --file <path>', 'read the payload from a file')
      .option('-l, --lines', 'one message per non-empty line of the input')
      .addOption(
        new Option('--codec <codec>', 'how the payload is sent')
          .choices(['auto', 'json', 'text', 'bytes'])
          .default('auto'),
      )
      .option('-k, --key <key>', 'the ordering and partitioning key')
      .option('-H, --header <name=value>', 'an application header (repeatable)', collectHeader);
    if (kind === 'topic')
      command.option('-s, --subject <subject>', 'dot-separated words, e.g. orders.eu.created');
    if (kind === 'queue') {
      command
        .option(
          '-p, --priority <n>',
          "priority, 0 to the queue's maximum (needs --max-priority)",
          parseNonNegativeInt,
        )
        .option(
          '--max-priority <n>',
          "the queue's priority range, declared as your application declares it (RabbitMQ refuses another)",
          parsePositiveInt,
        )
        .option('-d, --delay <ms>', 'do not deliver before this many milliseconds', parseNonNegativeInt);
    }
    command
      .option('--id <id>', 'the message id (one message only); generated otherwise')
      .option(
        '-c, --concurrency <n>',
        'messages waiting for confirmation at once; above 1, order is not kept',
        parsePositiveInt,
        1,
      )
      .option('--json', 'print one JSON object per message instead of its id');
    connectionOptions(command)
      .addHelpText('after', EXAMPLES[kind])
      .action(async (destination: string, argument: string | undefined, flags: SendFlags) => {
        await send(kind, destination, argument, flags);
      });
  }
}

async function send(kind: Kind, destination: string, argument: string | undefined, flags: SendFlags) {
  const url = brokerUrl(flags);
  if (flags.priority !== undefined && flags.maxPriority === undefined)
    throw new CliError(
      '--priority needs --max-priority: the queue must be declared with its priority range, as your application declares it',
      EXIT.usage,
    );
  const payloads = await readPayloads(argument, flags);
  if (payloads.length === 0) throw new CliError('no messages: the input has no non-empty line', EXIT.usage);
  if (flags.id !== undefined && payloads.length > 1)
    throw new CliError('--id names one message; the input has several', EXIT.usage);
  const bus = await connectBus(url, flags);
  try {
    await sendAll(bus, kind, destination, payloads, flags);
  } finally {
    await bus.close();
  }
}

async function sendAll(bus: Bus, kind: Kind, destination: string, payloads: Payload[], flags: SendFlags) {
  const sendOne = sender(bus, kind, destination, flags);
  const progress = new Progress(payloads.length, `${VERB[kind]} ${destination}`);
  // Ids go to stdout unless a terminal shows the bar there too: then a summary at the end.
  const printIds = !progress.active || process.stdout.isTTY !== true;
  const results: (SendResult | AppendResult | undefined)[] = new Array(payloads.length);
  let printed = 0;
  let next = 0;
  let failure: { index: number; error: unknown } | undefined;
  const flush = () => {
    while (printed < results.length && results[printed] !== undefined) {
      if (printIds) process.stdout.write(`${formatResult(results[printed]!, flags.json === true)}\n`);
      printed++;
    }
  };
  const worker = async () => {
    while (failure === undefined && next < payloads.length) {
      const index = next++;
      try {
        results[index] = await sendOne(payloads[index]!);
      } catch (error) {
        failure ??= { index, error };
        return;
      }
      progress.tick();
      flush();
    }
  };
  await Promise.all(Array.from({ length: Math.min(flags.concurrency, payloads.length) }, worker));
  progress.finish();
  const sent = results.filter((r) => r !== undefined);
  if (!printIds)
    process.stderr.write(
      `${DONE[kind]} ${sent.length} messages to ${kind} ${destination} (ids: ${sent[0]?.id} … ${sent.at(-1)?.id})\n`,
    );
  if (failure !== undefined && payloads.length === 1) throw failure.error;
  if (failure !== undefined) {
    throw new CliError(
      `message ${failure.index + 1} of ${payloads.length} was not sent (${sent.length} confirmed before it stopped): ${describeFailure(failure.error, flags.verbose === true)}`,
      exitCodeOf(failure.error),
    );
  }
}

/** One send with the flags, through a handle per codec (a handle's codec is fixed). */
function sender(bus: Bus, kind: Kind, name: string, flags: SendFlags) {
  const common = {
    ...(flags.id !== undefined ? { id: flags.id } : {}),
    ...(flags.key !== undefined ? { key: flags.key } : {}),
    ...(flags.header !== undefined ? { headers: flags.header } : {}),
  };
  const handles = new Map<string, (value: unknown) => Promise<SendResult | AppendResult>>();
  const handle = (codec: Payload['codec']) => {
    let found = handles.get(codec);
    if (found === undefined) {
      if (kind === 'queue') {
        const queue = bus.queue(name, {
          codec,
          ...(flags.maxPriority !== undefined ? { maxPriority: flags.maxPriority } : {}),
        });
        const options = {
          ...common,
          ...(flags.priority !== undefined ? { priority: flags.priority } : {}),
          ...(flags.delay !== undefined ? { delayMs: flags.delay } : {}),
        };
        found = (value) => queue.send(value, options);
      } else if (kind === 'topic') {
        const topic = bus.topic(name, { codec });
        const options = { ...common, ...(flags.subject !== undefined ? { subject: flags.subject } : {}) };
        found = (value) => topic.publish(value, options);
      } else {
        const log = bus.log(name, { codec });
        found = (value) => log.append(value, common);
      }
      handles.set(codec, found);
    }
    return found;
  };
  return (payload: Payload) => handle(payload.codec)(payload.value);
}

function formatResult(result: SendResult | AppendResult, json: boolean): string {
  const position = 'position' in result ? result.position : undefined;
  if (json) return JSON.stringify(position === undefined ? { id: result.id } : { id: result.id, position });
  return position === undefined ? result.id : `${result.id} ${position.partition}:${position.offset}`;
}
