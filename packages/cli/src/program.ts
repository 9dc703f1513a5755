/** The `omnibus` command: its subcommands, help and exit codes. */
import { Command, CommanderError } from 'commander';
import { adminCommands } from './commands/admin.js';
import { capsCommand } from './commands/caps.js';
import { checkCommand } from './commands/check.js';
import { consumeCommands } from './commands/consume.js';
import { dlqCommand } from './commands/dlq.js';
import { sendCommands } from './commands/send.js';
import { describeFailure, EXIT, type ExitCode, exitCodeOf } from './exit.js';

declare const VERSION: string | undefined;

export const EXIT_CODES_HELP = `
Exit codes:
  0  done (check: every claimed capability holds)
  1  failure: a claimed capability does not hold, a send, an ack or a redrive failed,
     or purge/delete-subscription was not confirmed
  2  usage or configuration: bad option, no broker URL, invalid URL or name
  3  the broker lacks a capability the command or --requires needs
  4  the broker could not be reached or refused the connection
  5  --timeout passed before --count messages arrived

The broker URL comes from --url (or the [url] argument of caps and check), else BROKER_URL.
purge and delete-subscription ask first on a terminal; elsewhere they need --yes.
Passwords in URLs are never printed.`;

export function createProgram(version: string): Command {
  const program = new Command('omnibus')
    .description(
      'One command line for Kafka, RabbitMQ, MQTT, STOMP and the in-memory broker: what a broker can do, proof that it does it, and messages in and out.',
    )
    .version(version, '-V, --version')
    .showHelpAfterError('(add --help for usage)')
    .configureHelp({ sortSubcommands: false })
    .addHelpText(
      'after',
      `
Examples:
  $ export BROKER_URL=amqp://guest:guest@localhost:5672
  $ omnibus caps
  $ omnibus check --requires queue,deadLetter,replay
  $ omnibus send orders '{"id":"A-1"}'
  $ omnibus consume orders --count 1
  $ omnibus dlq peek orders && omnibus dlq redrive orders
  $ omnibus subscribe shop 'orders.*.created' &  omnibus publish shop '{"id":"A-1"}' --subject orders.eu.created
${EXIT_CODES_HELP}`,
    );
  capsCommand(program);
  checkCommand(program);
  sendCommands(program);
  consumeCommands(program);
  dlqCommand(program);
  adminCommands(program);
  for (const command of allCommands(program)) command.showHelpAfterError('(add --help for usage)');
  return program;
}

/** Every subcommand, nested ones (`dlq peek`) too. */
function allCommands(command: Command): Command[] {
  return command.commands.flatMap((c) => [c, ...allCommands(c)]);
}

/** Runs the CLI and resolves with the exit code; never throws. */
export async function run(argv: readonly string[], version: string): Promise<ExitCode> {
  const program = createProgram(version);
  program.exitOverride();
  for (const command of allCommands(program)) command.exitOverride();
  try {
    await program.parseAsync([...argv], { from: 'user' });
    return EXIT.ok;
  } catch (error) {
    if (error instanceof CommanderError) {
      // Help and version are not errors; commander has printed the rest already.
      return error.exitCode === 0 ? EXIT.ok : EXIT.usage;
    }
    const verbose = argv.includes('--verbose') || argv.includes('-v');
    process.stderr.write(`omnibus: ${describeFailure(error, verbose)}\n`);
    return exitCodeOf(error);
  }
}
