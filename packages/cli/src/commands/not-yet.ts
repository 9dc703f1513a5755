import type { Command } from 'commander';
import { CliError, EXIT } from '../exit.js';

/**
 * Commands of the design that need adapter operations Omnibus does not have yet (browse, count and
 * redrive dead letters; queue depth; a group's lag; resetting a group). They are listed so that
 * `--help` shows the whole picture, and exit 6 so a script can tell "not in this version" apart.
 */
const LATER: readonly { name: string; summary: string }[] = [
  { name: 'dlq', summary: 'count, peek and redrive dead letters (not yet)' },
  { name: 'depth', summary: "a queue's depth (not yet)" },
  { name: 'lag', summary: "a log group's lag (not yet)" },
  { name: 'reset', summary: 'reset a log group to earliest, latest or a time (not yet)' },
];

export function notYetCommands(program: Command): void {
  for (const { name, summary } of LATER) {
    program
      .command(name)
      .summary(summary)
      .description(
        `${summary.replace(' (not yet)', '')}: not in this version. It needs admin operations on every adapter (peek, count and redrive of dead letters, queue depth, group lag and reset), which are still to be built. Exits with code 6.`,
      )
      .allowUnknownOption()
      .allowExcessArguments()
      .helpOption('-h, --help', 'display help for command')
      .action(() => {
        throw new CliError(
          `omnibus ${name} is not available yet: it needs admin operations the adapters do not have yet (exit code 6)`,
          EXIT.notYet,
        );
      });
  }
}
