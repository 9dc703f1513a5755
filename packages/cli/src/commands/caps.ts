import { type Capabilities, FEATURES, redactUrl, type Support } from '@omnibus/core';
import type { Command } from 'commander';
import { brokerUrl, type ConnectionFlags, connectBus, connectionOptions } from '../broker.js';
import { colourEnabled, type Paint, painter } from '../output.js';

export function capsCommand(program: Command): void {
  connectionOptions(
    program
      .command('caps')
      .summary("a live broker's capabilities")
      .description(
        'Connects and prints what the broker can do: for each capability, whether the broker does it natively, Omnibus emulates it, or it is not available (using it throws). Declared by the adapter for what it found at connect time; `omnibus check` proves them.',
      )
      .argument('[url]', 'broker URL (default: --url or $BROKER_URL)')
      .option('--json', 'print JSON instead of a table'),
  )
    .addHelpText(
      'after',
      `
Examples:
  $ omnibus caps amqp://guest:guest@localhost:5672
  $ BROKER_URL=kafka://localhost:9092 omnibus caps --json | jq .capabilities.replay
  $ omnibus caps 'memory://?profile=mqtt'`,
    )
    .action(async (positional: string | undefined, flags: ConnectionFlags & { json?: boolean }) => {
      const url = brokerUrl(flags, positional, { memoryAllowed: true });
      const bus = await connectBus(url, flags);
      try {
        const capabilities = bus.capabilities;
        if (flags.json === true) {
          process.stdout.write(
            `${JSON.stringify({ url: redactUrl(url), adapter: bus.adapter, capabilities }, null, 2)}\n`,
          );
        } else {
          const paint = painter(colourEnabled(process.stdout));
          process.stdout.write(`${capsTable(redactUrl(url), bus.adapter, capabilities, paint)}\n`);
        }
      } finally {
        await bus.close();
      }
    });
}

export function paintSupport(support: Support | string, paint: Paint): string {
  const padded = support.padEnd(8);
  return support === 'native'
    ? paint('green', padded)
    : support === 'emulated'
      ? paint('yellow', padded)
      : support === 'none'
        ? paint('red', padded)
        : padded;
}

function capsTable(url: string, adapter: string, c: Capabilities, paint: Paint): string {
  const rows = [
    ...FEATURES.map((f) => [f, paintSupport(c[f], paint)]),
    ['ordering', c.ordering],
    ['maxPriority', String(c.limits.maxPriority ?? '—')],
    ['maxMessageBytes', String(c.limits.maxMessageBytes ?? '—')],
    ['maxHeaderBytes', String(c.limits.maxHeaderBytes ?? '—')],
  ];
  return [
    `${paint('bold', url)} ${paint('dim', `(${adapter})`)}`,
    ...rows.map(([name, value]) => `  ${String(name).padEnd(22)}${value}`),
  ].join('\n');
}
